import { render } from "preact";
import { App } from "./ui/App";
import { startTheme } from "./theme/theme";
import { registerServiceWorker } from "./offline/serviceWorker";
import "./ui/styles.css";

startTheme();
render(<App />, document.getElementById("app")!);
registerServiceWorker();
