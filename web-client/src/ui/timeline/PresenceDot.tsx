/** A member's presence: a coloured dot, and optionally the label ("Online", "last seen 5 minutes ago"). */
import { client, timelineRevision } from "../../state/app";
import { describePresence, presenceOfUser } from "../../presence/presence";
import { useNow } from "../../presence/useNow";

export function PresenceDot(props: { userId: string; withLabel?: boolean }) {
  timelineRevision.value; // presence events bump it (matrix/events.ts)
  const now = useNow();
  const view = describePresence(presenceOfUser(client.value?.getUser(props.userId)), now);
  return (
    <span class="presence">
      <span class={`presence-dot presence-${view.state}`} role="img" aria-label={view.label} title={view.label} />
      {props.withLabel && <span class="presence-label">{view.label}</span>}
    </span>
  );
}

/** The label alone, for tooltips. */
export function presenceLabel(userId: string, now = Date.now()): string {
  return describePresence(presenceOfUser(client.value?.getUser(userId)), now).label;
}
