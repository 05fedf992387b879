/**
 * Display name and avatar of the signed-in user (spec: client-server-api/_index.md#profiles).
 */
import { useEffect, useState } from "preact/hooks";
import type { MatrixClient } from "matrix-js-sdk";
import { client } from "../../state/app";
import { features } from "../../state/features";
import { SettingsSection } from "./Section";

const AVATAR_SIZE = 96;

/** The avatar thumbnail as an object URL: authenticated media needs the token in a header, which <img> cannot send. */
function useAvatarUrl(matrix: MatrixClient, mxc: string | undefined): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!mxc) return setUrl(null);
    const authenticated = features.value.authenticatedMedia;
    const http = matrix.mxcUrlToHttp(mxc, AVATAR_SIZE, AVATAR_SIZE, "crop", false, true, authenticated);
    if (!http) return setUrl(null);
    let objectUrl: string | null = null;
    let cancelled = false;
    const headers: Record<string, string> = {};
    const token = matrix.getAccessToken();
    if (authenticated && token) headers.Authorization = `Bearer ${token}`;
    fetch(http, { headers })
      .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(`HTTP ${response.status}`))))
      .then((blob) => {
        if (cancelled) return;
        objectUrl = URL.createObjectURL(blob);
        setUrl(objectUrl);
      })
      .catch(() => !cancelled && setUrl(null));
    return () => {
      cancelled = true;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [mxc]);
  return url;
}

export function ProfileSection() {
  const matrix = client.value!;
  const userId = matrix.getUserId() ?? "";
  const [displayName, setDisplayName] = useState("");
  const [avatarMxc, setAvatarMxc] = useState<string | undefined>(undefined);
  const [status, setStatus] = useState<{ text: string; error?: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const avatarUrl = useAvatarUrl(matrix, avatarMxc);

  useEffect(() => {
    const known = matrix.getUser(userId);
    setDisplayName(known?.displayName ?? "");
    setAvatarMxc(known?.avatarUrl);
    matrix
      .getProfileInfo(userId)
      .then((profile) => {
        setDisplayName(profile.displayname ?? "");
        setAvatarMxc(profile.avatar_url);
      })
      .catch(() => undefined); // offline: the cached values above stay
  }, [userId]);

  const run = async (work: () => Promise<void>, done: string) => {
    setBusy(true);
    setStatus(null);
    try {
      await work();
      setStatus({ text: done });
    } catch (error) {
      setStatus({ text: (error as Error).message || "Could not save", error: true });
    } finally {
      setBusy(false);
    }
  };

  const saveName = (event: Event) => {
    event.preventDefault();
    void run(() => matrix.setDisplayName(displayName.trim()).then(() => undefined), "Display name saved");
  };

  const uploadAvatar = (file: File) =>
    run(async () => {
      if (!file.type.startsWith("image/")) throw new Error("Choose an image file");
      const { content_uri } = await matrix.uploadContent(file, { name: file.name, type: file.type });
      await matrix.setAvatarUrl(content_uri);
      setAvatarMxc(content_uri);
    }, "Avatar updated");

  const removeAvatar = () =>
    run(async () => {
      await matrix.setAvatarUrl("");
      setAvatarMxc(undefined);
    }, "Avatar removed");

  return (
    <SettingsSection id="settings-profile" title="Profile">
      <div class="profile">
        <div class="profile-avatar" aria-hidden="true">
          {avatarUrl ? <img src={avatarUrl} alt="" width={AVATAR_SIZE} height={AVATAR_SIZE} /> : <span>{(displayName || userId.slice(1)).charAt(0).toUpperCase()}</span>}
        </div>
        <div class="profile-fields">
          <form class="settings-row" onSubmit={saveName}>
            <label for="settings-display-name">Display name</label>
            <input id="settings-display-name" value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} maxLength={256} />
            <button type="submit" disabled={busy}>Save</button>
          </form>
          <p class="settings-hint">{userId}</p>
          <div class="settings-row">
            <label class="file-button">
              Change avatar
              <input
                type="file"
                accept="image/*"
                class="visually-hidden"
                disabled={busy}
                onChange={(e) => {
                  const file = e.currentTarget.files?.[0];
                  e.currentTarget.value = "";
                  if (file) void uploadAvatar(file);
                }}
              />
            </label>
            {avatarMxc && <button type="button" onClick={() => void removeAvatar()} disabled={busy}>Remove avatar</button>}
          </div>
          {status && <p role="status" class={status.error ? "error-text" : "settings-hint"}>{status.text}</p>}
        </div>
      </div>
    </SettingsSection>
  );
}
