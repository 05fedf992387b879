/**
 * Search: messages (the server for unencrypted rooms, this device's index for
 * encrypted ones, merged newest first), rooms (joined ones by name, and the public
 * directory) and people (the user directory).
 * spec: client-server-api/modules/search.md; docs/search.md for the server's filters.
 */
import { useState } from "preact/hooks";
import { Dialog } from "../Dialog";
import { client, selectedRoomId } from "../../state/app";
import { MEDIA_KINDS, type MediaKind } from "../../search/filters";
import { EMPTY_FORM, useSearch, type FilterForm } from "./useSearch";
import { MessageGroup, PeopleGroup, RoomGroup } from "./SearchResults";
import "./search.css";

export function SearchPanel() {
  const matrix = client.value;
  const openRoom = selectedRoomId.value;
  const [term, setTerm] = useState("");
  const [form, setForm] = useState<FilterForm>(EMPTY_FORM);
  const { messages, rooms, people, error, loadMore, extensions } = useSearch(matrix, term, form, openRoom);

  const update = (patch: Partial<FilterForm>) => setForm((old) => ({ ...old, ...patch }));
  const toggleMedia = (kind: MediaKind, on: boolean) =>
    update({ media: on ? [...form.media, kind] : form.media.filter((other) => other !== kind) });

  return (
    <Dialog title="Search" wide>
      <div class="search-panel">
        <form role="search" onSubmit={(event) => event.preventDefault()}>
          <label class="search-query">
            <span class="visually-hidden">Search</span>
            <input
              type="search"
              value={term}
              placeholder="Search messages, rooms and people"
              autoFocus
              onInput={(event) => setTerm(event.currentTarget.value)}
            />
          </label>
          <details class="search-filters">
            <summary>Filters</summary>
            <div class="search-filter-grid">
              <label>
                <span>In</span>
                <select value={form.scope} onChange={(event) => update({ scope: event.currentTarget.value as FilterForm["scope"] })}>
                  <option value="all">All rooms</option>
                  <option value="room" disabled={!openRoom}>This room</option>
                </select>
              </label>
              <label>
                <span>Sender</span>
                <input type="text" value={form.sender} placeholder="@user:server" onInput={(event) => update({ sender: event.currentTarget.value })} />
              </label>
              {extensions && (
                <>
                  <label>
                    <span>From</span>
                    <input type="date" value={form.from} onInput={(event) => update({ from: event.currentTarget.value })} />
                  </label>
                  <label>
                    <span>To</span>
                    <input type="date" value={form.to} onInput={(event) => update({ to: event.currentTarget.value })} />
                  </label>
                  <label class="search-check">
                    <input type="checkbox" checked={form.unreadOnly} onChange={(event) => update({ unreadOnly: event.currentTarget.checked })} />
                    <span>Unread only</span>
                  </label>
                  <fieldset class="search-media">
                    <legend>Media</legend>
                    {(Object.keys(MEDIA_KINDS) as MediaKind[]).map((kind) => (
                      <label key={kind} class="search-check">
                        <input type="checkbox" checked={form.media.includes(kind)} onChange={(event) => toggleMedia(kind, event.currentTarget.checked)} />
                        <span>{MEDIA_LABELS[kind]}</span>
                      </label>
                    ))}
                  </fieldset>
                </>
              )}
            </div>
          </details>
        </form>
        {error && <p class="error-text" role="alert">{error}</p>}
        {term.trim() && matrix && (
          <div class="search-groups">
            <MessageGroup matrix={matrix} state={messages} onLoadMore={() => void loadMore()} />
            <RoomGroup matrix={matrix} rooms={rooms} />
            <PeopleGroup matrix={matrix} people={people} />
          </div>
        )}
      </div>
    </Dialog>
  );
}

const MEDIA_LABELS: Record<MediaKind, string> = { image: "Images", audio: "Audio", video: "Video", file: "Files" };

