// Whether a process with this pid exists (signal 0 checks without sending anything). Shared by the
// tests and the fault-injection harness that watch child processes stop.

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
