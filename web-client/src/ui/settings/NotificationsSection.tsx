/**
 * Notifications on this device (browser permission, the user's switch, Web Push) and
 * per-room mute (a push rule, so it holds on every device).
 */
import { useEffect, useState } from "preact/hooks";
import { KnownMembership } from "matrix-js-sdk";
import { client, roomsRevision } from "../../state/app";
import { features } from "../../state/features";
import {
  disableNotifications,
  enableNotifications,
  notificationPermission,
  notificationsSwitchedOn,
  refreshPermission,
} from "../../notify/permission";
import { isRoomMuted, setRoomMuted } from "../../notify/mute";
import { checkWebPush, disableWebPush, enableWebPush, webPushActive, webPushSupported } from "../../notify/webPush";
import { SettingsSection } from "./Section";

export function NotificationsSection() {
  useEffect(() => refreshPermission(), []);
  return (
    <SettingsSection id="settings-notifications" title="Notifications">
      <BrowserNotifications />
      <WebPush />
      <MutedRooms />
    </SettingsSection>
  );
}

function BrowserNotifications() {
  const permission = notificationPermission.value;
  const on = notificationsSwitchedOn.value && permission === "granted";
  let state: string;
  if (permission === "unsupported") state = "This browser cannot show notifications.";
  else if (permission === "denied")
    state =
      "Notifications are blocked for this site. To allow them again, open the site settings (the icon left of the address bar), set Notifications to Allow, then reload.";
  else if (on) state = "On: new messages show a notification while this tab is in the background.";
  else if (permission === "granted") state = "Off on this device.";
  else state = "Off. The browser will ask for permission when you enable them.";
  return (
    <div class="settings-block">
      <h4>Browser notifications</h4>
      <p class="settings-hint" role="status">{state}</p>
      {permission !== "unsupported" && permission !== "denied" && (
        <div class="settings-row">
          {on ? (
            <button type="button" onClick={() => disableNotifications()}>Disable notifications</button>
          ) : (
            <button type="button" class="primary" onClick={() => void enableNotifications()}>Enable notifications</button>
          )}
        </div>
      )}
    </div>
  );
}

function WebPush() {
  const matrix = client.value!;
  const vapidKey = features.value.webPushVapidKey;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (vapidKey && webPushSupported()) checkWebPush(matrix).catch(() => undefined);
  }, [vapidKey]);
  if (!vapidKey) return null; // the server offers no Web Push (docs/push.md: `m.webpush` in /capabilities)
  if (!webPushSupported()) return <p class="settings-hint">This browser cannot receive push messages.</p>;
  const active = webPushActive.value === true;
  const toggle = async () => {
    setBusy(true);
    setError(null);
    try {
      if (active) await disableWebPush(matrix);
      else {
        // Push messages must show notifications, so the permission comes first.
        if ((await enableNotifications()) !== "granted") throw new Error("Notifications are not allowed, so push cannot be enabled");
        await enableWebPush(matrix, vapidKey);
      }
    } catch (e) {
      setError(`Push could not be ${active ? "disabled" : "enabled"}: ${(e as Error).message || "unknown error"}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="settings-block">
      <h4>Push</h4>
      <p class="settings-hint">
        {active ? "On: this device is notified even while the app is closed." : "Get notified even while the app is closed."}
      </p>
      <div class="settings-row">
        <button type="button" class={active ? undefined : "primary"} disabled={busy} onClick={() => void toggle()}>
          {active ? "Disable push on this device" : "Enable push on this device"}
        </button>
      </div>
      {error && <p class="error-text" role="alert">{error}</p>}
    </div>
  );
}

function MutedRooms() {
  const matrix = client.value!;
  void roomsRevision.value; // push rules arrive as account data, which bumps it
  // The box shows the wanted state at once; the push rule follows a round trip later.
  const [changing, setChanging] = useState<{ roomId: string; muted: boolean } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const rooms = matrix
    .getRooms()
    .filter((room) => room.getMyMembership() === KnownMembership.Join)
    .sort((a, b) => a.name.localeCompare(b.name));
  const toggle = async (roomId: string, muted: boolean) => {
    setChanging({ roomId, muted });
    setError(null);
    try {
      await setRoomMuted(roomId, muted, matrix);
    } catch (e) {
      setError((e as Error).message || "Could not change the room's notifications");
    } finally {
      setChanging(null);
    }
  };
  return (
    <fieldset class="settings-block muted-rooms">
      <legend>Muted rooms</legend>
      <p class="settings-hint">A muted room shows no notifications on any of your devices.</p>
      {rooms.length === 0 && <p class="settings-hint">No rooms yet.</p>}
      <ul>
        {rooms.map((room) => (
          <li key={room.roomId}>
            <label>
              <input
                type="checkbox"
                checked={changing?.roomId === room.roomId ? changing.muted : isRoomMuted(room.roomId, matrix)}
                disabled={changing !== null}
                onChange={(e) => void toggle(room.roomId, e.currentTarget.checked)}
              />
              {" "}Mute {room.name}
            </label>
          </li>
        ))}
      </ul>
      {error && <p class="error-text" role="alert">{error}</p>}
    </fieldset>
  );
}
