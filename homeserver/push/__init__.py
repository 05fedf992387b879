"""Push rules: the rules as data and their edits (:mod:`.rules`), and applying them to
events (:mod:`.evaluator`).  spec: client-server-api/modules/push.md"""
