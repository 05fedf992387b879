/**
 * Says so when end-to-end encryption could not start (matrix/client.ts): the app then
 * works with unencrypted rooms only, and messages queued for encrypted rooms are not
 * sent (offline/outbox.ts marks them failed rather than send them in the clear).
 */
import { cryptoStartup } from "../../matrix/client";
import "./session.css";

export function CryptoUnavailableNotice() {
  const startup = cryptoStartup.value;
  if (startup.state !== "unavailable") return null;
  return (
    <p class="crypto-unavailable" role="status" title={startup.error}>
      Encryption is unavailable in this browser: only unencrypted rooms work.
    </p>
  );
}
