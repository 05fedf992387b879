/**
 * Room settings → Permissions: the level each action needs.  An option above one's
 * own level is disabled, and so is the whole select without the power to change
 * m.room.power_levels (rooms/powerLevels.ts#canSetPermission).
 */
import { EventType } from "matrix-js-sdk";
import { ADMIN, MODERATOR, canSetPermission, permissionLevel, withPermission, type PermissionKey } from "../../../rooms/powerLevels";
import { sendLevels, type RoomContext } from "./roomPower";
import { ActionStatus, useAction, useOptimistic } from "./useAction";

const state = (eventType: string): PermissionKey => ({ kind: "event", eventType, isState: true });

export const PERMISSIONS: { label: string; key: PermissionKey }[] = [
  { label: "Send messages", key: { kind: "level", key: "events_default" } },
  { label: "Invite people", key: { kind: "level", key: "invite" } },
  { label: "Change the room name", key: state(EventType.RoomName) },
  { label: "Change the topic", key: state(EventType.RoomTopic) },
  { label: "Change the room image", key: state(EventType.RoomAvatar) },
  { label: "Kick members", key: { kind: "level", key: "kick" } },
  { label: "Ban members", key: { kind: "level", key: "ban" } },
  { label: "Delete others' messages", key: { kind: "level", key: "redact" } },
  { label: "Change other settings", key: { kind: "level", key: "state_default" } },
  { label: "Change permissions and roles", key: state(EventType.RoomPowerLevels) },
];

const PRESETS = [
  { level: 0, label: "Everyone (0)" },
  { level: MODERATOR, label: "Moderators (50)" },
  { level: ADMIN, label: "Admins (100)" },
];

export function PermissionsTab({ context }: { context: RoomContext }) {
  const action = useAction();
  return (
    <div class="rooms-form">
      {PERMISSIONS.map(({ label, key }) => <PermissionRow key={label} context={context} label={label} permission={key} action={action} />)}
      <ActionStatus error={action.error} done={action.done} />
    </div>
  );
}

function PermissionRow(props: { context: RoomContext; label: string; permission: PermissionKey; action: ReturnType<typeof useAction> }) {
  const { context, label, permission, action } = props;
  const { levels, me } = context;
  const [current, choose, settle] = useOptimistic(permissionLevel(levels, permission));
  const allowed = canSetPermission(levels, me, permission, permissionLevel(levels, permission));
  const options = PRESETS.some((preset) => preset.level === current) ? PRESETS : [...PRESETS, { level: current, label: `Custom (${current})` }];
  const id = `permission-${label.replace(/\W+/g, "-").toLowerCase()}`;
  const change = async (level: number) => {
    choose(level);
    const ok = await action.run(label, () => sendLevels(context, withPermission(levels, permission, level)), `“${label}” now needs level ${level}.`);
    if (!ok) settle();
  };
  return (
    <div class="rooms-permission-row">
      <label for={id}>{label}</label>
      <select id={id} value={String(current)} disabled={action.busy !== null || !allowed.ok}
        title={allowed.ok ? undefined : allowed.reason} onChange={(e) => void change(Number(e.currentTarget.value))}>
        {[...options].sort((a, b) => a.level - b.level).map((option) => (
          <option key={option.level} value={String(option.level)}
            disabled={option.level !== current && !canSetPermission(levels, me, permission, option.level).ok}>
            {option.label}
          </option>
        ))}
      </select>
    </div>
  );
}
