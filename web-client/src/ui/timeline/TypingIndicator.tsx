/** "Alice is typing…" from the room members' typing state (m.typing ephemeral events). */
import type { Room } from "matrix-js-sdk";
import { client, timelineRevision } from "../../state/app";
import { typingText } from "./typing";

export function TypingIndicator(props: { room: Room }) {
  timelineRevision.value; // RoomMemberEvent.Typing bumps it
  const me = client.value?.getUserId();
  const names = props.room
    .getJoinedMembers()
    .filter((member) => member.typing && member.userId !== me)
    .map((member) => member.name)
    .sort();
  return (
    <div class="typing-indicator" aria-live="polite">
      {typingText(names)}
    </div>
  );
}
