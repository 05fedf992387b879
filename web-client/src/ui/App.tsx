/**
 * The app's frame: the login screen, or the signed-in layout (header, the "Rooms"
 * navigation, the open room) with at most one panel over it.
 */
import { useEffect } from "preact/hooks";
import { client, panel, selectedRoomId } from "../state/app";
import { Login } from "./login/Login";
import { openInOtherTab, restoreSession } from "../session/session";
import { SignOutButton } from "./session/SignOutButton";
import { UiaPrompt } from "./auth/UiaPrompt";
import { OpenInOtherTab } from "./session/OpenInOtherTab";
import { CryptoUnavailableNotice } from "./session/CryptoUnavailableNotice";
import { OfflineBanner } from "./OfflineBanner";
import { RoomList } from "./rooms/RoomList";
import { RoomView } from "./room/RoomView";
import { SettingsPanel } from "./settings/SettingsPanel";
import { RoomSettingsPanel } from "./room/RoomSettingsPanel";
import { CreateRoomPanel } from "./rooms/CreateRoomPanel";
import { DirectoryPanel } from "./rooms/DirectoryPanel";
import { StartDmPanel } from "./rooms/StartDmPanel";
import { SearchPanel } from "./search/SearchPanel";
import { EditHistoryPanel } from "./timeline/EditHistoryPanel";
import { VerificationPanel, VerificationPrompt } from "./crypto/VerificationPanel";
import { signal } from "@preact/signals";
import { useLastRoom } from "./room/useLastRoom";

const restoring = signal(true);

export function App() {
  useEffect(() => {
    restoreSession().finally(() => (restoring.value = false));
  }, []);
  if (restoring.value) return <div class="splash" role="status">Loading…</div>;
  if (openInOtherTab.value) return <OpenInOtherTab />;
  if (!client.value) return <Login />;
  return <SignedIn />;
}

function SignedIn() {
  const roomId = selectedRoomId.value;
  useLastRoom(client.value!);
  return (
    <div class={roomId ? "layout room-open" : "layout"}>
      <header class="app-header">
        <span class="app-title">Chat</span>
        <OfflineBanner />
        <CryptoUnavailableNotice />
        <div class="header-actions">
          <button type="button" onClick={() => (panel.value = { kind: "search" })}>Search</button>
          <button type="button" onClick={() => (panel.value = { kind: "settings" })}>Settings</button>
          <SignOutButton />
        </div>
      </header>
      <nav class="sidebar" aria-label="Rooms">
        <RoomList />
      </nav>
      <main class="room-pane">
        {roomId ? <RoomView key={roomId} roomId={roomId} /> : <p class="empty-pane">Pick a room, or start a conversation.</p>}
      </main>
      <OpenPanel />
      <VerificationPrompt />
      <UiaPrompt />
    </div>
  );
}

function OpenPanel() {
  const open = panel.value;
  if (!open) return null;
  switch (open.kind) {
    case "settings":
      return <SettingsPanel />;
    case "room-settings":
      return <RoomSettingsPanel roomId={open.roomId} />;
    case "create-room":
      return <CreateRoomPanel />;
    case "directory":
      return <DirectoryPanel />;
    case "start-dm":
      return <StartDmPanel />;
    case "search":
      return <SearchPanel />;
    case "edit-history":
      return <EditHistoryPanel roomId={open.roomId} eventId={open.eventId} />;
    case "verification":
      return <VerificationPanel requestId={open.requestId} />;
  }
}
