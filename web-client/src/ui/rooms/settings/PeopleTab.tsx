/**
 * Room settings → People: members (joined, invited, banned) with their role, invite by
 * user ID, and per member kick, ban/unban, mute/unmute and role changes.  Each control
 * is disabled, with the reason as its title, when one lacks the power (rooms/powerLevels.ts).
 */
import { useState } from "preact/hooks";
import type { RoomMember } from "matrix-js-sdk";
import {
  ADMIN,
  MODERATOR,
  canBan,
  canInvite,
  canKick,
  canMute,
  canSetUserLevel,
  canUnban,
  canUnmute,
  isCreator,
  isMuted,
  mutedLevel,
  roleName,
  unmutedLevel,
  userLevel,
  withUserLevel,
  type Verdict,
} from "../../../rooms/powerLevels";
import { parseUserIds } from "../../../rooms/create";
import { Avatar } from "../Avatar";
import { PresenceDot } from "../../timeline/PresenceDot";
import { sendLevels, type RoomContext } from "./roomPower";
import { useDirectorySuggestions } from "./useDirectorySuggestions";
import { ActionStatus, useAction } from "./useAction";
import { MemberVerification } from "./MemberVerification";

const GROUPS = [
  { membership: "join", title: "Members" },
  { membership: "invite", title: "Invited" },
  { membership: "ban", title: "Banned" },
] as const;

export function PeopleTab({ context }: { context: RoomContext }) {
  const members = context.room.getMembers();
  return (
    <div>
      <InviteForm context={context} />
      {GROUPS.map(({ membership, title }) => {
        const group = members
          .filter((member) => member.membership === membership)
          .sort((a, b) => byLevel(userLevel(context.levels, b.userId), userLevel(context.levels, a.userId)) || a.name.localeCompare(b.name));
        if (group.length === 0) return null;
        return (
          <section class="rooms-settings-section" aria-label={title} key={membership}>
            <h3>{title} ({group.length})</h3>
            <ul class="rooms-member-list">
              {group.map((member) => <MemberRow key={member.userId} context={context} member={member} />)}
            </ul>
          </section>
        );
      })}
    </div>
  );
}

/** Like b - a, but creators' infinite levels compare equal instead of giving NaN. */
function byLevel(b: number, a: number): number {
  return b === a ? 0 : b > a ? 1 : -1;
}

function InviteForm({ context }: { context: RoomContext }) {
  const [input, setInput] = useState("");
  const may = canInvite(context.levels, context.me);
  const { busy, error, done, run, setError } = useAction();
  // Suggestions only while one person is being typed (the field also takes a list of IDs).
  const single = /[\s,]/.test(input.trim()) ? "" : input;
  const suggestions = useDirectorySuggestions(context.matrix, single, (userId) => {
    const membership = context.room.getMember(userId)?.membership;
    return userId === context.me || membership === "join" || membership === "invite" || membership === "ban";
  });
  const submit = (event: Event) => {
    event.preventDefault();
    const { ids, invalid } = parseUserIds(input);
    if (invalid.length || ids.length === 0) return setError(`Not a user ID: ${invalid.join(", ") || "(empty)"} — they look like @name:server`);
    void run("invite", async () => {
      for (const userId of ids) await context.matrix.invite(context.room.roomId, userId);
      setInput("");
    }, `Invited ${ids.join(", ")}.`);
  };
  return (
    <form class="rooms-field rooms-settings-section" onSubmit={submit}>
      <label for="invite-user">Invite by name or user ID</label>
      <div class="rooms-inline-form">
        <input id="invite-user" value={input} placeholder="Name or @bob:server" disabled={!may.ok} title={may.ok ? undefined : may.reason}
          list="invite-suggestions" autoComplete="off" onInput={(e) => setInput(e.currentTarget.value)} />
        <datalist id="invite-suggestions">
          {suggestions.map((person) => (
            <option key={person.userId} value={person.userId}>
              {person.name ?? person.userId}
            </option>
          ))}
        </datalist>
        <button type="submit" class="primary" disabled={!may.ok || busy !== null} title={may.ok ? undefined : may.reason}>
          {busy ? "Inviting…" : "Invite"}
        </button>
      </div>
      <ActionStatus error={error} done={done} />
    </form>
  );
}

function MemberRow({ context, member }: { context: RoomContext; member: RoomMember }) {
  const { levels, me, matrix, room } = context;
  const target = member.userId;
  const level = userLevel(levels, target);
  const muted = member.membership === "join" && isMuted(levels, target);
  const role = muted ? "Muted" : roleName(levels, level);
  const { busy, error, done, run } = useAction();
  const [reasonFor, setReasonFor] = useState<"kick" | "ban" | null>(null);
  const [confirmStepDown, setConfirmStepDown] = useState(false);
  const setLevel = (label: string, newLevel: number, doneText: string) =>
    run(label, () => sendLevels(context, withUserLevel(levels, target, newLevel)), doneText);
  const name = member.name || target;

  const button = (label: string, verdict: Verdict, onClick: () => void, danger = false) => (
    <button type="button" class={danger ? "danger" : undefined} aria-label={`${label} ${name}`}
      disabled={!verdict.ok || busy !== null} title={verdict.ok ? undefined : verdict.reason} onClick={onClick}>
      {busy === label ? `${label}…` : label}
    </button>
  );

  const actions = [];
  // One's own row offers only stepping down (kicking or banning oneself is "Leave" in General).
  if (target === me && member.membership === "join" && !isCreator(levels, me) && level > unmutedLevel(levels)) {
    actions.push(button("Step down", canSetUserLevel(levels, me, me, unmutedLevel(levels)), () => setConfirmStepDown(true)));
  }
  if (member.membership === "ban") {
    actions.push(button("Unban", canUnban(levels, me, target), () => void run("Unban", () => matrix.unban(room.roomId, target), `${name} was unbanned.`)));
  } else if (target !== me) {
    // Creators (room version 12+) have a fixed, infinite level: no role controls for them.
    if (member.membership === "join" && !isCreator(levels, target)) {
      if (level < MODERATOR) actions.push(button("Make moderator", canSetUserLevel(levels, me, target, MODERATOR), () => void setLevel("Make moderator", MODERATOR, `${name} is now a moderator.`)));
      if (level < ADMIN) actions.push(button("Make admin", canSetUserLevel(levels, me, target, ADMIN), () => void setLevel("Make admin", ADMIN, `${name} is now an admin.`)));
      if (level >= MODERATOR) actions.push(button("Demote", canSetUserLevel(levels, me, target, unmutedLevel(levels)), () => void setLevel("Demote", unmutedLevel(levels), `${name} was demoted.`)));
      actions.push(
        muted
          ? button("Unmute", canUnmute(levels, me, target), () => void setLevel("Unmute", unmutedLevel(levels), `${name} can send messages again.`))
          : button("Mute", canMute(levels, me, target), () => void setLevel("Mute", mutedLevel(levels), `${name} can no longer send messages.`)),
      );
    }
    // Kicking an invited member withdraws the invite.
    const kickLabel = member.membership === "invite" ? "Cancel invite" : "Kick";
    actions.push(button(kickLabel, canKick(levels, me, target), () => (member.membership === "invite" ? void run(kickLabel, () => matrix.kick(room.roomId, target), `Invite withdrawn.`) : setReasonFor("kick")), true));
    actions.push(button("Ban", canBan(levels, me, target), () => setReasonFor("ban"), true));
  }

  return (
    <li class="rooms-member-item">
      <Avatar name={name} mxc={member.getMxcAvatarUrl() ?? undefined} size={32} />
      <span class="rooms-result-text">
        <span class="rooms-result-title">{name}{target === me ? " (you)" : ""}</span>
        <span class="rooms-result-meta">{target}{member.membership === "ban" ? banNote(member) : ""}</span>
        {member.membership === "join" && target !== me && <PresenceDot userId={target} withLabel />}
      </span>
      {member.membership !== "ban" && <span class={role === "Admin" || role === "Creator" ? "rooms-role-badge admin" : role === "Muted" ? "rooms-role-badge muted" : "rooms-role-badge"}
        title={level === Infinity ? "Created the room: always has full power" : `Power level ${level}`}>{role === "Default" ? `Member` : role}</span>}
      <span class="rooms-member-actions">
        {member.membership === "join" && target !== me && <MemberVerification room={room} userId={target} name={name} />}
        {actions}
      </span>
      {confirmStepDown && (
        <div class="rooms-form" style={{ flexBasis: "100%" }}>
          <p class="rooms-warning-text">Step down to a regular member? You can't undo this yourself: only an admin can give you the role back.</p>
          <div class="rooms-form-actions">
            <button type="button" onClick={() => setConfirmStepDown(false)}>Cancel</button>
            <button type="button" class="danger" disabled={busy !== null} onClick={async () => {
              if (await setLevel("Step down", unmutedLevel(levels), "You stepped down.")) setConfirmStepDown(false);
            }}>
              {busy ? "Stepping down…" : "Step down"}
            </button>
          </div>
        </div>
      )}
      {reasonFor && (
        <ReasonForm
          action={reasonFor === "kick" ? "Kick" : "Ban"}
          name={name}
          busy={busy !== null}
          onCancel={() => setReasonFor(null)}
          onConfirm={async (reason) => {
            const ok = reasonFor === "kick"
              ? await run("Kick", () => matrix.kick(room.roomId, target, reason || undefined), `${name} was removed.`)
              : await run("Ban", () => matrix.ban(room.roomId, target, reason || undefined), `${name} was banned.`);
            if (ok) setReasonFor(null);
          }}
        />
      )}
      {(error || done) && <div style={{ flexBasis: "100%" }}><ActionStatus error={error} done={done} /></div>}
    </li>
  );
}

/** " · banned by Alice: spam", from the ban's member event. */
function banNote(member: RoomMember): string {
  const event = member.events.member;
  if (!event) return "";
  const by = event.getSender();
  const reason = event.getContent().reason;
  return ` · banned${by ? ` by ${event.sender?.name ?? by}` : ""}${typeof reason === "string" && reason ? `: ${reason}` : ""}`;
}

function ReasonForm(props: { action: string; name: string; busy: boolean; onCancel: () => void; onConfirm: (reason: string) => void }) {
  const [reason, setReason] = useState("");
  const id = `reason-${props.action}-${props.name}`.replace(/\W+/g, "-");
  return (
    <form class="rooms-form" style={{ flexBasis: "100%" }} onSubmit={(e) => (e.preventDefault(), props.onConfirm(reason.trim()))}>
      <label class="rooms-field" for={id}>
        <span>{props.action} {props.name}: reason (optional, shown to them)</span>
      </label>
      <div class="rooms-inline-form">
        <input id={id} value={reason} autoFocus onInput={(e) => setReason(e.currentTarget.value)} />
        <button type="button" onClick={props.onCancel}>Cancel</button>
        <button type="submit" class="danger" disabled={props.busy}>{props.busy ? `${props.action}…` : `${props.action} ${props.name}`}</button>
      </div>
    </form>
  );
}
