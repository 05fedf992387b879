/**
 * Small line icons as inline SVG (emoji fonts are missing on many Linux machines and
 * differ everywhere else).  Decorative: hidden from assistive technology; the
 * control around each one carries the name.
 */
import type { JSX } from "preact";

function Icon(props: { size?: number; children: JSX.Element | JSX.Element[] }) {
  const size = props.size ?? 20;
  return (
    <svg width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">
      {props.children}
    </svg>
  );
}

export const PaperclipIcon = () => (
  <Icon>
    <path d="M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5" />
  </Icon>
);

export const MicIcon = () => (
  <Icon>
    <rect x="9" y="2" width="6" height="12" rx="3" />
    <path d="M5 10v1a7 7 0 0 0 14 0v-1M12 18v4M8 22h8" />
  </Icon>
);

export const MusicIcon = (props: { size?: number }) => (
  <Icon size={props.size ?? 16}>
    <path d="M9 18V5l12-2v13" />
    <circle cx="6" cy="18" r="3" />
    <circle cx="18" cy="16" r="3" />
  </Icon>
);

export const FileIcon = (props: { size?: number; label?: string }) => (
  <Icon size={props.size ?? 28}>
    <path d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z" />
    <path d="M14 2v6h6" />
    {props.label ? (
      <text x="12" y="18" text-anchor="middle" font-size="6" stroke="none" fill="currentColor" font-family="sans-serif" font-weight="700">
        {props.label}
      </text>
    ) : (
      <path d="M8 13h8M8 17h5" />
    )}
  </Icon>
);

export const PlayIcon = () => (
  <svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
    <path d="M8 5v14l11-7z" fill="currentColor" />
  </svg>
);
