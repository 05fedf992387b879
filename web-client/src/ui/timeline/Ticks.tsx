/**
 * The tick of one's own message.  The accessible name is exactly the state ("Sending",
 * "Sent", "Delivered", "Seen"): assistive technology and the browser tests read it.
 */
import type { Tick } from "../../receipts/ticks";

const GLYPHS: Record<Tick, string> = { Sending: "◷", Sent: "✓", Delivered: "✓✓", Seen: "✓✓" };

export function Ticks(props: { tick: Tick }) {
  return (
    <span role="status" aria-label={props.tick} title={props.tick} class={`tick tick-${props.tick.toLowerCase()}`}>
      <span aria-hidden="true">{GLYPHS[props.tick]}</span>
    </span>
  );
}
