"""Account data: per-user client config, global and per room, including room tags
(``m.tag``) and the ignored users list (``m.ignored_user_list``)."""
