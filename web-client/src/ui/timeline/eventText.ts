/**
 * One short line for membership and room state changes ("Alice joined", "Bob renamed
 * the room to Lunch"), or null for events the timeline does not show.
 * spec: client-server-api/_index.md#mroommember and the m.room.* state events.
 */
import type { MatrixEvent } from "matrix-js-sdk";

export function stateEventText(event: MatrixEvent, nameOf: (userId: string) => string): string | null {
  const sender = nameOf(event.getSender() ?? "");
  const content = event.getContent();
  const previous = event.getPrevContent();
  switch (event.getType()) {
    case "m.room.create":
      return `${sender} created the room`;
    case "m.room.member":
      return membershipText(sender, event.getSender() ?? "", event.getStateKey() ?? "", content, previous, nameOf);
    case "m.room.name":
      return content.name ? `${sender} renamed the room to ${content.name}` : `${sender} removed the room name`;
    case "m.room.topic":
      return content.topic ? `${sender} set the topic to "${content.topic}"` : `${sender} removed the topic`;
    case "m.room.avatar":
      return content.url ? `${sender} changed the room image` : `${sender} removed the room image`;
    case "m.room.encryption":
      return `${sender} turned on end-to-end encryption`;
    case "m.room.join_rules":
      return content.join_rule === "public" ? `${sender} made the room public` : `${sender} made the room invite only`;
    case "m.room.power_levels":
      return previous && Object.keys(previous).length ? `${sender} changed the permissions` : null;
    case "m.room.history_visibility":
    case "m.room.guest_access":
      return null;
    default:
      return null;
  }
}

function membershipText(
  sender: string,
  senderId: string,
  targetId: string,
  content: Record<string, any>,
  previous: Record<string, any>,
  nameOf: (userId: string) => string,
): string | null {
  const target = content.displayname ?? nameOf(targetId);
  const reason = content.reason ? `: ${content.reason}` : "";
  const was = previous?.membership;
  switch (content.membership) {
    case "invite":
      return `${sender} invited ${target}`;
    case "join":
      if (was === "join") {
        if (previous.displayname !== content.displayname) {
          return content.displayname
            ? `${previous.displayname ?? targetId} changed their name to ${content.displayname}`
            : `${previous.displayname} removed their name`;
        }
        if (previous.avatar_url !== content.avatar_url) return `${target} changed their picture`;
        return null;
      }
      return `${target} joined`;
    case "leave":
      if (senderId !== targetId) {
        if (was === "invite") return `${sender} withdrew ${target}'s invitation${reason}`;
        if (was === "ban") return `${sender} unbanned ${target}`;
        return `${sender} removed ${target}${reason}`;
      }
      return was === "invite" ? `${target} declined the invitation` : `${target} left`;
    case "ban":
      return `${sender} banned ${target}${reason}`;
    case "knock":
      return `${target} asked to join`;
    default:
      return null;
  }
}
