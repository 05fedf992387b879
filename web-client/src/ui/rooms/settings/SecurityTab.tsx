/** Room settings → Security: encryption (one way), who can join, who can read history, guest access. */
import { useState } from "preact/hooks";
import { EventType, GuestAccess, HistoryVisibility, JoinRule } from "matrix-js-sdk";
import { canSendState } from "../../../rooms/powerLevels";
import { MEGOLM } from "../../../rooms/create";
import type { RoomContext } from "./roomPower";
import { ActionStatus, useAction, useOptimistic } from "./useAction";

const HISTORY: { value: HistoryVisibility; label: string }[] = [
  { value: HistoryVisibility.WorldReadable, label: "Anyone, even without joining" },
  { value: HistoryVisibility.Shared, label: "Members (all history)" },
  { value: HistoryVisibility.Invited, label: "Members, from when they were invited" },
  { value: HistoryVisibility.Joined, label: "Members, from when they joined" },
];

export function SecurityTab({ context }: { context: RoomContext }) {
  const { room, matrix, levels, me } = context;
  const { busy, error, done, run } = useAction();
  const [confirmEncryption, setConfirmEncryption] = useState(false);
  const encrypted = room.hasEncryptionStateEvent();
  const mayEncrypt = canSendState(levels, me, EventType.RoomEncryption);
  const mayJoinRule = canSendState(levels, me, EventType.RoomJoinRules);
  const mayHistory = canSendState(levels, me, EventType.RoomHistoryVisibility);
  const mayGuests = canSendState(levels, me, EventType.RoomGuestAccess);
  const [joinRule, chooseJoinRule, settleJoinRule] = useOptimistic<string>(room.getJoinRule());
  const [history, chooseHistory, settleHistory] = useOptimistic<string>(room.getHistoryVisibility());
  const [guests, chooseGuests, settleGuests] = useOptimistic<string>(room.getGuestAccess());
  const id = room.roomId;
  /** Shows the choice at once, sends it, and drops it again if the server refuses. */
  const change = async <T,>(choose: (value: T) => void, settle: () => void, value: T, label: string, send: () => Promise<unknown>, doneText: string) => {
    choose(value);
    if (!(await run(label, send, doneText))) settle();
  };
  const setJoinRule = (rule: JoinRule, doneText: string) =>
    change(chooseJoinRule, settleJoinRule, rule, "join", () => matrix.sendStateEvent(id, EventType.RoomJoinRules, { join_rule: rule }, ""), doneText);

  return (
    <div class="rooms-form">
      <section class="rooms-settings-section" aria-label="Encryption">
        <h3>Encryption</h3>
        {encrypted ? (
          <p>Messages in this room are end-to-end encrypted.</p>
        ) : confirmEncryption ? (
          <div class="rooms-form">
            <p class="rooms-warning-text">
              Once on, encryption can't be turned off. Server-side search and previews stop working for new messages,
              and people can only read messages sent after their device joined.
            </p>
            <div class="rooms-form-actions">
              <button type="button" onClick={() => setConfirmEncryption(false)}>Cancel</button>
              <button type="button" class="primary" disabled={busy !== null}
                onClick={() => void run("encrypt", () => matrix.sendStateEvent(id, EventType.RoomEncryption, { algorithm: MEGOLM }, ""), "Encryption is on.").then(() => setConfirmEncryption(false))}>
                Turn on encryption
              </button>
            </div>
          </div>
        ) : (
          <button type="button" disabled={!mayEncrypt.ok} title={mayEncrypt.ok ? undefined : mayEncrypt.reason} onClick={() => setConfirmEncryption(true)}>
            Turn on encryption…
          </button>
        )}
      </section>

      <fieldset class="rooms-field rooms-settings-section" disabled={!mayJoinRule.ok || busy !== null} title={mayJoinRule.ok ? undefined : mayJoinRule.reason}>
        <legend>Who can join</legend>
        <label class="rooms-choice">
          <input type="radio" name="join-rule" checked={joinRule === JoinRule.Invite}
            onChange={() => void setJoinRule(JoinRule.Invite, "Only invited people can join now.")} />
          <span>Only invited people</span>
        </label>
        <label class="rooms-choice">
          <input type="radio" name="join-rule" checked={joinRule === JoinRule.Public}
            onChange={() => void setJoinRule(JoinRule.Public, "Anyone can join now.")} />
          <span>Anyone who knows the room</span>
        </label>
        {joinRule !== JoinRule.Invite && joinRule !== JoinRule.Public && <p class="rooms-field-hint">Currently: {joinRule}</p>}
      </fieldset>

      <label class="rooms-field rooms-settings-section">
        <span>Who can read the history</span>
        <select value={history} disabled={!mayHistory.ok || busy !== null} title={mayHistory.ok ? undefined : mayHistory.reason}
          onChange={(e) => {
            const value = e.currentTarget.value as HistoryVisibility;
            void change(chooseHistory, settleHistory, value, "history", () => matrix.sendStateEvent(id, EventType.RoomHistoryVisibility, { history_visibility: value }, ""), "History visibility changed.");
          }}>
          {HISTORY.map((option) => <option key={option.value} value={option.value}>{option.label}</option>)}
        </select>
      </label>

      <label class="rooms-choice rooms-settings-section">
        <input type="checkbox" checked={guests === GuestAccess.CanJoin} disabled={!mayGuests.ok || busy !== null}
          title={mayGuests.ok ? undefined : mayGuests.reason}
          onChange={(e) => {
            const access = e.currentTarget.checked ? GuestAccess.CanJoin : GuestAccess.Forbidden;
            void change(chooseGuests, settleGuests, access, "guests", () => matrix.sendStateEvent(id, EventType.RoomGuestAccess, { guest_access: access }, ""), "Guest access changed.");
          }} />
        <span>Allow guests (accounts without registration) to join</span>
      </label>
      <ActionStatus error={error} done={done} />
    </div>
  );
}
