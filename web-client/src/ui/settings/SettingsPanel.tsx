/**
 * The settings panel (opened by the header's "Settings" button): appearance, profile,
 * sessions, notifications and encryption, one section each.
 */
import { Dialog } from "../Dialog";
import { AppearanceSection } from "./AppearanceSection";
import { ProfileSection } from "./ProfileSection";
import { SessionsSection } from "./SessionsSection";
import { NotificationsSection } from "./NotificationsSection";
import { SettingsSection } from "./Section";
import { EncryptionSettings } from "../crypto/EncryptionSettings";
import "./settings.css";

export function SettingsPanel() {
  return (
    <Dialog title="Settings" wide>
      <div class="settings">
        <AppearanceSection />
        <ProfileSection />
        <SessionsSection />
        <NotificationsSection />
        <SettingsSection id="settings-encryption" title="Encryption">
          <EncryptionSettings />
        </SettingsSection>
      </div>
    </Dialog>
  );
}

