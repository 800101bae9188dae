import { render } from "preact";

import { AppState, type Config } from "./state/app";
import { App } from "./ui/app";
import "./styles.css";

/** The API URLs: `/config.json` next to the app (written by the local stack or the deployment). */
async function config(): Promise<Config> {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  return (await response.json()) as Config;
}

async function main() {
  const root = document.getElementById("app")!;
  let settings: Config;
  try {
    settings = await config();
  } catch (error) {
    root.innerHTML = "";
    const p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = `Parley cannot start: ${String(error)}`;
    root.append(p);
    return;
  }
  const state = new AppState(settings, localStorage);
  // For the browser tests and for debugging from the console.
  (window as unknown as { __parley: AppState }).__parley = state;
  root.innerHTML = "";
  render(<App state={state} />, root);
  await state.start();
}

void main();
