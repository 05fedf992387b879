/**
 * Server-side message search, POST /search (spec: client-server-api/modules/search.md),
 * with the server's own `dev.homeserver.*` filters when it announces them
 * (docs/search.md#filters).  Encrypted rooms are never searched there.
 */
import type { IEvent, MatrixClient } from "matrix-js-sdk";
import type { ISearchRequestBody } from "matrix-js-sdk/lib/@types/search";
import type { SearchFilters } from "./filters";
import type { FoundMessage } from "./message";

export interface ServerHit extends FoundMessage {
  rank: number;
}

export interface ServerPage {
  hits: ServerHit[];
  highlights: string[];
  count?: number;
  nextBatch?: string;
}

/** The `filter` of a room_events search; the dev.homeserver fields only when `extensions`. */
export function buildSearchFilter(filters: SearchFilters, extensions: boolean): Record<string, unknown> {
  const filter: Record<string, unknown> = { limit: 20 };
  if (filters.roomIds?.length) filter.rooms = filters.roomIds;
  if (filters.sender) filter.senders = [filters.sender];
  if (!extensions) return filter;
  if (filters.sinceTs !== undefined) filter["dev.homeserver.since_ts"] = filters.sinceTs;
  if (filters.untilTs !== undefined) filter["dev.homeserver.until_ts"] = filters.untilTs;
  if (filters.unreadOnly) filter["dev.homeserver.unread_only"] = true;
  if (filters.media?.length) filter["dev.homeserver.media"] = filters.media;
  return filter;
}

export function buildSearchBody(term: string, filters: SearchFilters, extensions: boolean): ISearchRequestBody {
  return {
    search_categories: {
      room_events: {
        search_term: term,
        keys: ["content.body"],
        order_by: "recent" as ISearchRequestBody["search_categories"]["room_events"]["order_by"],
        filter: buildSearchFilter(filters, extensions) as ISearchRequestBody["search_categories"]["room_events"]["filter"],
      },
    },
  };
}

/** One page of results, newest first; `nextBatch` from the previous page for the next. */
export async function searchServer(
  client: MatrixClient,
  term: string,
  filters: SearchFilters,
  extensions: boolean,
  nextBatch?: string,
): Promise<ServerPage> {
  const response = await client.search({ body: buildSearchBody(term, filters, extensions), next_batch: nextBatch });
  const events = response.search_categories.room_events;
  const hits: ServerHit[] = [];
  for (const result of events.results ?? []) {
    const event = result.result as Partial<IEvent>;
    const content = (event.content ?? {}) as Record<string, unknown>;
    if (!event.event_id || !event.room_id) continue;
    hits.push({
      eventId: event.event_id,
      roomId: event.room_id,
      sender: event.sender ?? "",
      ts: event.origin_server_ts ?? 0,
      msgtype: String(content.msgtype ?? ""),
      body: typeof content.body === "string" ? content.body : "",
      rank: result.rank,
    });
  }
  return { hits, highlights: events.highlights ?? [], count: events.count, nextBatch: events.next_batch };
}
