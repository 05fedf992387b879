/** Room settings → General: name, topic, image, public address and directory listing, leaving. */
import { useEffect, useState } from "preact/hooks";
import { EventType, Visibility } from "matrix-js-sdk";
import { panel, selectedRoomId } from "../../../state/app";
import { canSendState } from "../../../rooms/powerLevels";
import { aliasLocalpart } from "../../../rooms/create";
import { Avatar } from "../Avatar";
import { stateContent, type RoomContext } from "./roomPower";
import { ActionStatus, useAction, useOptimistic } from "./useAction";
import { isRoomMuted, setRoomMuted } from "../../../notify/mute";

export function GeneralTab({ context }: { context: RoomContext }) {
  const isPublic = context.room.getJoinRule() === "public";
  return (
    <div>
      <NameAndTopic context={context} />
      <RoomImage context={context} />
      {isPublic && <PublicAddress context={context} />}
      <RoomTags context={context} />
      <RoomMute context={context} />
      <LeaveRoom context={context} />
    </div>
  );
}

function NameAndTopic({ context }: { context: RoomContext }) {
  const { room, levels, me, matrix } = context;
  const savedName = String(stateContent(room, EventType.RoomName).name ?? "");
  const savedTopic = String(stateContent(room, EventType.RoomTopic).topic ?? "");
  const [name, setName] = useState(savedName);
  const [topic, setTopic] = useState(savedTopic);
  const mayName = canSendState(levels, me, EventType.RoomName);
  const mayTopic = canSendState(levels, me, EventType.RoomTopic);
  const { busy, error, done, run } = useAction();
  const changed = name !== savedName || topic !== savedTopic;

  const save = (event: Event) => {
    event.preventDefault();
    void run("save", async () => {
      if (name !== savedName) await matrix.setRoomName(room.roomId, name.trim());
      if (topic !== savedTopic) await matrix.setRoomTopic(room.roomId, topic.trim());
    }, "Saved.");
  };
  return (
    <form class="rooms-form rooms-settings-section" onSubmit={save}>
      <label class="rooms-field">
        <span>Room name</span>
        <input value={name} disabled={!mayName.ok} title={mayName.ok ? undefined : mayName.reason}
          onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label class="rooms-field">
        <span>Topic</span>
        <textarea rows={2} value={topic} disabled={!mayTopic.ok} title={mayTopic.ok ? undefined : mayTopic.reason}
          onInput={(e) => setTopic(e.currentTarget.value)} />
      </label>
      <div class="rooms-form-actions">
        <button type="submit" class="primary" disabled={!changed || busy !== null}>{busy ? "Saving…" : "Save"}</button>
      </div>
      <ActionStatus error={error} done={done} />
    </form>
  );
}

function RoomImage({ context }: { context: RoomContext }) {
  const { room, levels, me, matrix } = context;
  const url = stateContent(room, EventType.RoomAvatar).url;
  const may = canSendState(levels, me, EventType.RoomAvatar);
  const { busy, error, done, run } = useAction();
  const upload = (file: File) =>
    run("upload", async () => {
      if (!file.type.startsWith("image/")) throw new Error("Choose an image file.");
      const { content_uri } = await matrix.uploadContent(file, { name: file.name, type: file.type });
      await matrix.sendStateEvent(room.roomId, EventType.RoomAvatar, { url: content_uri }, "");
    }, "Image updated.");
  return (
    <section class="rooms-settings-section" aria-label="Room image">
      <h3>Room image</h3>
      <div class="rooms-room-image-row">
        <Avatar name={room.name} mxc={typeof url === "string" ? url : undefined} size={64} />
        <label class="rooms-field">
          <span class="visually-hidden">Choose a room image</span>
          <input type="file" accept="image/*" disabled={!may.ok || busy !== null} title={may.ok ? undefined : may.reason}
            onChange={(e) => {
              const file = e.currentTarget.files?.[0];
              if (file) void upload(file);
              e.currentTarget.value = "";
            }} />
        </label>
        {typeof url === "string" && url && (
          <button type="button" disabled={!may.ok || busy !== null} title={may.ok ? undefined : may.reason}
            onClick={() => void run("remove", () => matrix.sendStateEvent(room.roomId, EventType.RoomAvatar, {}, ""), "Image removed.")}>
            Remove image
          </button>
        )}
      </div>
      {busy === "upload" && <p class="rooms-status-text" role="status">Uploading…</p>}
      <ActionStatus error={error} done={done} />
    </section>
  );
}

function PublicAddress({ context }: { context: RoomContext }) {
  const { room, levels, me, matrix } = context;
  const canonical = room.getCanonicalAlias();
  const [localpart, setLocalpart] = useState("");
  const [listed, setListed] = useState<boolean | null>(null);
  const mayAlias = canSendState(levels, me, EventType.RoomCanonicalAlias);
  const { busy, error, done, run } = useAction();

  useEffect(() => {
    let live = true;
    matrix.getRoomDirectoryVisibility(room.roomId).then(
      (answer) => live && setListed(answer.visibility === Visibility.Public),
      () => live && setListed(false),
    );
    return () => void (live = false);
  }, [room.roomId]);

  const addAddress = (event: Event) => {
    event.preventDefault();
    const alias = `#${aliasLocalpart(localpart)}:${matrix.getDomain()}`;
    void run("alias", async () => {
      await matrix.createAlias(alias, room.roomId);
      await matrix.sendStateEvent(room.roomId, EventType.RoomCanonicalAlias, { ...stateContent(room, EventType.RoomCanonicalAlias), alias }, "");
      setLocalpart("");
    }, `The room's address is now ${alias}.`);
  };
  const setDirectory = async (publish: boolean) => {
    setListed(publish);
    const ok = await run("directory", () => matrix.setRoomDirectoryVisibility(room.roomId, publish ? Visibility.Public : Visibility.Private),
      publish ? "Listed in the directory." : "Removed from the directory.");
    if (!ok) setListed(!publish);
  };

  return (
    <section class="rooms-settings-section rooms-form" aria-label="Public address">
      <h3>Address</h3>
      <p class="rooms-field-hint">{canonical ? `People can join with ${canonical}.` : "This room has no address yet."}</p>
      <form class="rooms-field" onSubmit={addAddress}>
        <label for="room-address">New address</label>
        <div class="rooms-inline-form">
          <input id="room-address" value={localpart} placeholder="my-room" disabled={!mayAlias.ok}
            title={mayAlias.ok ? undefined : mayAlias.reason} onInput={(e) => setLocalpart(e.currentTarget.value)} />
          <button type="submit" disabled={!mayAlias.ok || !aliasLocalpart(localpart) || busy !== null}>Set address</button>
        </div>
      </form>
      <label class="rooms-choice">
        <input type="checkbox" checked={listed === true} disabled={listed === null || busy !== null}
          onChange={(e) => void setDirectory(e.currentTarget.checked)} />
        <span>Publish in the room directory</span>
      </label>
      <ActionStatus error={error} done={done} />
    </section>
  );
}

/** Favourite / low priority: one's own tags (spec: client-server-api/modules/tags.md), ordering the room list. */
function RoomTags({ context }: { context: RoomContext }) {
  const { room, matrix } = context;
  const { busy, error, run } = useAction();
  const [favourite, chooseFavourite, settleFavourite] = useOptimistic("m.favourite" in room.tags);
  const [low, chooseLow, settleLow] = useOptimistic("m.lowpriority" in room.tags);
  const toggle = async (tag: string, on: boolean, other: string) => {
    const [choose, settle, chooseOther, settleOther] =
      tag === "m.favourite" ? [chooseFavourite, settleFavourite, chooseLow, settleLow] : [chooseLow, settleLow, chooseFavourite, settleFavourite];
    choose(on);
    // A room is either favourite or low priority, not both.
    if (on) chooseOther(false);
    const ok = await run(tag, async () => {
      if (on) {
        await matrix.setRoomTag(room.roomId, tag, {});
        if (room.tags[other]) await matrix.deleteRoomTag(room.roomId, other);
      } else await matrix.deleteRoomTag(room.roomId, tag);
    });
    if (!ok) (settle(), settleOther());
  };
  return (
    <fieldset class="rooms-field rooms-settings-section" disabled={busy !== null}>
      <legend>In your room list</legend>
      <label class="rooms-choice">
        <input type="checkbox" checked={favourite} onChange={(e) => void toggle("m.favourite", e.currentTarget.checked, "m.lowpriority")} />
        <span>Favourite (listed first)</span>
      </label>
      <label class="rooms-choice">
        <input type="checkbox" checked={low} onChange={(e) => void toggle("m.lowpriority", e.currentTarget.checked, "m.favourite")} />
        <span>Low priority (listed last)</span>
      </label>
      <ActionStatus error={error} />
    </fieldset>
  );
}

/** Per-room mute, a push rule, so it holds on all of the user's devices (notify/mute.ts). */
function RoomMute({ context }: { context: RoomContext }) {
  const { room, matrix } = context;
  const { busy, error, run } = useAction();
  const [muted, choose, settle] = useOptimistic(isRoomMuted(room.roomId, matrix));
  const toggle = async (on: boolean) => {
    choose(on);
    if (!(await run("mute", () => setRoomMuted(room.roomId, on, matrix)))) settle();
  };
  return (
    <fieldset class="rooms-field rooms-settings-section" disabled={busy !== null}>
      <legend>Notifications</legend>
      <label class="rooms-choice">
        <input type="checkbox" checked={muted} onChange={(e) => void toggle(e.currentTarget.checked)} />
        <span>Mute notifications</span>
      </label>
      <ActionStatus error={error} />
    </fieldset>
  );
}

function LeaveRoom({ context }: { context: RoomContext }) {
  const [confirming, setConfirming] = useState(false);
  const { busy, error, run } = useAction();
  const leave = async () => {
    const ok = await run("leave", () => context.matrix.leave(context.room.roomId));
    if (ok) {
      if (selectedRoomId.value === context.room.roomId) selectedRoomId.value = null;
      panel.value = null;
    }
  };
  return (
    <section class="rooms-settings-section" aria-label="Leave room">
      <h3>Leave</h3>
      {confirming ? (
        <div class="rooms-form">
          <p class="rooms-warning-text">
            Leave {context.room.name}?{context.room.getJoinRule() === "public" ? "" : " You will need a new invite to come back."}
          </p>
          <div class="rooms-form-actions">
            <button type="button" onClick={() => setConfirming(false)}>Cancel</button>
            <button type="button" class="danger" disabled={busy !== null} onClick={() => void leave()}>
              {busy ? "Leaving…" : "Leave"}
            </button>
          </div>
        </div>
      ) : (
        <button type="button" class="danger" onClick={() => setConfirming(true)}>Leave room</button>
      )}
      <ActionStatus error={error} />
    </section>
  );
}
