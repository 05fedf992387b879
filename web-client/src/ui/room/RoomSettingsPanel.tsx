/**
 * Room settings: General, People, Permissions and Security tabs (src/ui/rooms/settings/).
 * Tabs follow the WAI-ARIA tabs pattern: arrow keys move between them.
 */
import { useRef, useState } from "preact/hooks";
import { Dialog } from "../Dialog";
import { useRoomContext } from "../rooms/settings/roomPower";
import { GeneralTab } from "../rooms/settings/GeneralTab";
import { PeopleTab } from "../rooms/settings/PeopleTab";
import { PermissionsTab } from "../rooms/settings/PermissionsTab";
import { SecurityTab } from "../rooms/settings/SecurityTab";
import "../rooms/rooms.css";

const TABS = [
  { id: "general", label: "General", Component: GeneralTab },
  { id: "people", label: "People", Component: PeopleTab },
  { id: "permissions", label: "Permissions", Component: PermissionsTab },
  { id: "security", label: "Security", Component: SecurityTab },
] as const;

export function RoomSettingsPanel(props: { roomId: string }) {
  const context = useRoomContext(props.roomId);
  const [active, setActive] = useState(0);
  const tabRefs = useRef<(HTMLButtonElement | null)[]>([]);
  if (!context) {
    return (
      <Dialog title="Room settings" wide>
        <p class="rooms-status-text">This room is not available (you may have left it).</p>
      </Dialog>
    );
  }
  const select = (index: number) => {
    const next = (index + TABS.length) % TABS.length;
    setActive(next);
    tabRefs.current[next]?.focus();
  };
  const onKeyDown = (event: KeyboardEvent) => {
    const moves: Record<string, number> = { ArrowRight: active + 1, ArrowLeft: active - 1, Home: 0, End: TABS.length - 1 };
    const target = moves[event.key];
    if (target === undefined) return;
    event.preventDefault();
    select(target);
  };
  const { Component } = TABS[active]!;
  return (
    <Dialog title={`Room settings: ${context.room.name}`} wide>
      <div class="rooms-settings-tabs" role="tablist" aria-label="Room settings sections" onKeyDown={onKeyDown}>
        {TABS.map((tab, index) => (
          <button
            key={tab.id}
            ref={(element) => void (tabRefs.current[index] = element)}
            type="button"
            role="tab"
            id={`room-tab-${tab.id}`}
            aria-selected={index === active}
            aria-controls={`room-tabpanel-${tab.id}`}
            tabIndex={index === active ? 0 : -1}
            onClick={() => setActive(index)}
          >
            {tab.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`room-tabpanel-${TABS[active]!.id}`} aria-labelledby={`room-tab-${TABS[active]!.id}`}>
        <Component context={context} />
      </div>
    </Dialog>
  );
}
