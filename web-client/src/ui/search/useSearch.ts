/**
 * The search's query and filter state turned into results: messages (server and local
 * index, merged), rooms and people, searched again 300 ms after the query or filters
 * change; older answers are dropped.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { KnownMembership, type MatrixClient } from "matrix-js-sdk";
import { features } from "../../state/features";
import { dayEnd, dayStart, type MediaKind, type SearchFilters } from "../../search/filters";
import { searchServer } from "../../search/serverSearch";
import { getLocalSearchIndex, unreadTest } from "../../search/indexer";
import { fuzzyMatchNames, mergeResults, type MessageResult } from "../../search/results";
import { errorMessage } from "../../rooms/errors";

export interface FilterForm {
  scope: "all" | "room";
  sender: string;
  from: string;
  to: string;
  unreadOnly: boolean;
  media: MediaKind[];
}

export const EMPTY_FORM: FilterForm = { scope: "all", sender: "", from: "", to: "", unreadOnly: false, media: [] };

export interface MessageState {
  results: MessageResult[];
  highlights: string[];
  nextBatch?: string;
  serverError?: string;
  searching: boolean;
}

export interface RoomHit {
  id: string;
  name: string;
  joined: boolean;
  topic?: string;
}

export interface PersonHit {
  userId: string;
  name: string;
}

export function useSearch(matrix: MatrixClient | null, term: string, form: FilterForm, openRoom: string | null) {
  const extensions = features.value.searchFilters;
  const filters = toFilters(form, openRoom, extensions);
  const [messages, setMessages] = useState<MessageState>({ results: [], highlights: [], searching: false });
  const [rooms, setRooms] = useState<RoomHit[]>([]);
  const [people, setPeople] = useState<PersonHit[]>([]);
  const [error, setError] = useState("");
  const ticket = useRef(0);

  useEffect(() => {
    const query = term.trim();
    if (!matrix || !query) {
      setMessages({ results: [], highlights: [], searching: false });
      setRooms([]);
      setPeople([]);
      return;
    }
    const timer = setTimeout(() => {
      const mine = ++ticket.current;
      const current = () => mine === ticket.current;
      setError("");
      setMessages((state) => ({ ...state, searching: true }));
      void searchMessages(matrix, query, filters, extensions).then((state) => current() && setMessages(state));
      void findRooms(matrix, query).then((found) => current() && setRooms(found)).catch((e) => current() && setError(errorMessage(e)));
      void findPeople(matrix, query).then((found) => current() && setPeople(found)).catch(() => current() && setPeople([]));
    }, 300);
    return () => clearTimeout(timer);
  }, [term, JSON.stringify(form), openRoom, extensions]);

  const loadMore = async () => {
    if (!matrix || !messages.nextBatch) return;
    const mine = ticket.current;
    setMessages((state) => ({ ...state, searching: true }));
    try {
      const page = await searchServer(matrix, term.trim(), filters, extensions, messages.nextBatch);
      if (mine !== ticket.current) return;
      setMessages((state) => ({
        results: mergeResults(state.results, page.hits.map((hit) => ({ ...hit, source: "server" as const }))),
        highlights: [...state.highlights, ...page.highlights],
        nextBatch: page.nextBatch,
        searching: false,
      }));
    } catch (caught) {
      if (mine === ticket.current) setMessages((state) => ({ ...state, searching: false, serverError: errorMessage(caught) }));
    }
  };

  return { messages, rooms, people, error, loadMore, extensions };
}

function toFilters(form: FilterForm, openRoom: string | null, extensions: boolean): SearchFilters {
  const filters: SearchFilters = {};
  if (form.scope === "room" && openRoom) filters.roomIds = [openRoom];
  if (form.sender.trim()) filters.sender = form.sender.trim();
  if (!extensions) return filters;
  filters.sinceTs = dayStart(form.from);
  filters.untilTs = dayEnd(form.to);
  if (form.unreadOnly) filters.unreadOnly = true;
  if (form.media.length) filters.media = form.media;
  return filters;
}

/** Server search (skipped when the only room searched is encrypted) and the local index, merged. */
async function searchMessages(matrix: MatrixClient, query: string, filters: SearchFilters, extensions: boolean): Promise<MessageState> {
  const onlyEncrypted = filters.roomIds?.every((id) => matrix.getRoom(id)?.hasEncryptionStateEvent()) ?? false;
  const server = onlyEncrypted
    ? Promise.resolve(null)
    : searchServer(matrix, query, filters, extensions).catch((caught: unknown) => new Error(errorMessage(caught)));
  const index = await getLocalSearchIndex();
  const localHits = index?.search(query, filters, unreadTest(matrix)) ?? [];
  const local: MessageResult[] = localHits.map((hit) => ({ ...hit, source: "local" }));
  const localTerms = localHits.flatMap((hit) => hit.terms);
  const page = await server;
  if (page instanceof Error) {
    return { results: mergeResults([], local), highlights: localTerms, serverError: page.message, searching: false };
  }
  return {
    results: mergeResults(page?.hits.map((hit) => ({ ...hit, source: "server" as const })) ?? [], local),
    highlights: [...(page?.highlights ?? []), ...localTerms],
    nextBatch: page?.nextBatch,
    searching: false,
  };
}

async function findRooms(matrix: MatrixClient, query: string): Promise<RoomHit[]> {
  const joined = matrix
    .getRooms()
    .filter((room) => room.getMyMembership() === KnownMembership.Join)
    .map((room) => ({ id: room.roomId, name: room.name, joined: true }));
  const local = fuzzyMatchNames(joined, query);
  try {
    const directory = await matrix.publicRooms({ limit: 10, filter: { generic_search_term: query } });
    const known = new Set(joined.map((room) => room.id));
    const remote = directory.chunk
      .filter((room) => !known.has(room.room_id))
      .map((room) => ({ id: room.room_id, name: room.name ?? room.canonical_alias ?? room.room_id, joined: false, topic: room.topic }));
    return [...local, ...remote];
  } catch {
    return local; // offline, or no directory: joined rooms still help
  }
}

async function findPeople(matrix: MatrixClient, query: string): Promise<PersonHit[]> {
  const me = matrix.getUserId();
  const { results } = await matrix.searchUserDirectory({ term: query, limit: 10 });
  return results.filter((person) => person.user_id !== me).map((person) => ({ userId: person.user_id, name: person.display_name || person.user_id }));
}

