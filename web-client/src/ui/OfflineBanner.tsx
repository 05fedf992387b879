/**
 * The connection's state in the header: "Offline" while the server cannot be
 * reached, "Connecting…" until the first sync, and the service worker's
 * "Reload to update" offer.
 */
import { online, syncState } from "../state/app";
import { activateUpdate, updateWaiting } from "../offline/serviceWorker";
import "./offline-banner.css";

export function OfflineBanner() {
  const offline = !online.value;
  const connecting = !offline && (syncState.value === "STOPPED" || syncState.value === "CATCHUP");
  return (
    <>
      {offline && (
        <p class="offline-banner" role="status">
          Offline — messages you send will be delivered when the connection returns
        </p>
      )}
      {connecting && (
        <p class="offline-banner connecting" role="status">
          Connecting…
        </p>
      )}
      {updateWaiting.value && (
        <p class="update-banner" role="status">
          A new version is ready.{" "}
          <button type="button" onClick={activateUpdate}>
            Reload to update
          </button>
        </p>
      )}
    </>
  );
}
