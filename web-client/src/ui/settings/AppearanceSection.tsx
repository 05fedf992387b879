import { setThemeChoice, themeChoice, parseThemeChoice } from "../../theme/theme";
import { SettingsSection } from "./Section";

export function AppearanceSection() {
  return (
    <SettingsSection id="settings-appearance" title="Appearance">
      <label class="settings-row">
        <span>Theme</span>
        <select
          value={themeChoice.value}
          onChange={(event) => {
            const choice = parseThemeChoice(event.currentTarget.value);
            if (choice) void setThemeChoice(choice);
          }}
        >
          <option value="light">Light</option>
          <option value="dark">Dark</option>
          <option value="system">System</option>
        </select>
      </label>
      <p class="settings-hint">System follows your device's light or dark setting. The choice follows you to your other sessions.</p>
    </SettingsSection>
  );
}
