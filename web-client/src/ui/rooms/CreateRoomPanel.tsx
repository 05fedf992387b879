/**
 * "New room": a private (invite-only, encrypted by default) or public (published in
 * the directory, optional address) group, with people invited at creation.
 */
import { useState } from "preact/hooks";
import { Dialog } from "../Dialog";
import { client, panel, selectedRoomId } from "../../state/app";
import { createRoomOptions, parseUserIds, type NewRoomForm } from "../../rooms/create";
import { errorMessage } from "../../rooms/errors";
import "./rooms.css";

export function CreateRoomPanel() {
  const [form, setForm] = useState<Omit<NewRoomForm, "invite"> & { invite: string }>({
    name: "",
    topic: "",
    visibility: "private",
    alias: "",
    encrypted: true,
    invite: "",
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const update = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  const isPublic = form.visibility === "public";
  const server = client.value?.getDomain() ?? "";

  const submit = async (event: Event) => {
    event.preventDefault();
    const matrix = client.value;
    if (!matrix) return;
    const { ids, invalid } = parseUserIds(form.invite);
    if (!form.name.trim()) return setError("Give the room a name.");
    if (invalid.length) return setError(`Not a user ID: ${invalid.join(", ")} (they look like @name:${server || "server"})`);
    setBusy(true);
    setError("");
    try {
      const { room_id: roomId } = await matrix.createRoom(createRoomOptions({ ...form, invite: ids }));
      selectedRoomId.value = roomId;
      panel.value = null;
    } catch (caught) {
      setError(errorMessage(caught));
      setBusy(false);
    }
  };

  return (
    <Dialog title="New room">
      <form class="rooms-form" onSubmit={submit}>
        <label class="rooms-field">
          <span>Name</span>
          <input required value={form.name} onInput={(e) => update({ name: e.currentTarget.value })} />
        </label>
        <label class="rooms-field">
          <span>Topic (optional)</span>
          <input value={form.topic} onInput={(e) => update({ topic: e.currentTarget.value })} />
        </label>
        <fieldset class="rooms-field">
          <legend>Who can join</legend>
          <label class="rooms-choice">
            <input type="radio" name="visibility" checked={!isPublic} onChange={() => update({ visibility: "private" })} />
            <span>Private — only people who are invited</span>
          </label>
          <label class="rooms-choice">
            <input type="radio" name="visibility" checked={isPublic} onChange={() => update({ visibility: "public" })} />
            <span>Public — anyone can find it in the directory and join</span>
          </label>
        </fieldset>
        {isPublic ? (
          <label class="rooms-field">
            <span>Address (optional)</span>
            <input value={form.alias} placeholder="my-room" aria-describedby="new-room-alias-hint"
              onInput={(e) => update({ alias: e.currentTarget.value })} />
            <span id="new-room-alias-hint" class="rooms-field-hint">
              People can join with #{form.alias.replace(/^#/, "").replace(/:.*$/, "") || "address"}:{server}
            </span>
          </label>
        ) : (
          <label class="rooms-choice">
            <input type="checkbox" checked={form.encrypted} onChange={(e) => update({ encrypted: e.currentTarget.checked })} />
            <span>End-to-end encryption (can't be turned off later)</span>
          </label>
        )}
        {!isPublic && !form.encrypted && (
          <p class="rooms-field-hint">Some servers encrypt every private room anyway.</p>
        )}
        <label class="rooms-field">
          <span>Invite people (optional)</span>
          <input value={form.invite} placeholder="@bob:example.org, @carol:example.org" aria-describedby="new-room-invite-hint"
            onInput={(e) => update({ invite: e.currentTarget.value })} />
          <span id="new-room-invite-hint" class="rooms-field-hint">User IDs, separated by commas or spaces.</span>
        </label>
        {error && <p class="error-text" role="alert">{error}</p>}
        <div class="rooms-form-actions">
          <button type="button" onClick={() => (panel.value = null)}>Cancel</button>
          <button type="submit" class="primary" disabled={busy}>{busy ? "Creating…" : "Create room"}</button>
        </div>
      </form>
    </Dialog>
  );
}
