//! QEMU's machine protocol (QMP) on a machine's socket, by hand: newline-delimited JSON, a
//! greeting, `qmp_capabilities`, then one command. Events (`POWERDOWN`, `SHUTDOWN`) may come
//! before a command's answer and are skipped. Every exchange has a deadline, so a QEMU that
//! hangs cannot hang a stop.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::backend::LocalError;

/// How long one connection, with its greeting and both commands, may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// Runs the QMP command `execute` (without arguments) on the QEMU listening at `socket` and
/// returns its answer's `return` value. `step` names it in errors.
pub(crate) async fn execute(socket: &Path, step: &'static str, execute: &str) -> Result<Value, LocalError> {
    let exchange = async {
        let stream = UnixStream::connect(socket).await.map_err(|error| qmp_error(step, &error.to_string()))?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = next_message(&mut lines, step).await?;
        if greeting.get("QMP").is_none() {
            return Err(qmp_error(step, &format!("no QMP greeting: {greeting}")));
        }
        for command in ["qmp_capabilities", execute] {
            let mut line = serde_json::json!({ "execute": command }).to_string();
            line.push('\n');
            write.write_all(line.as_bytes()).await?;
            let answer = answer(&mut lines, step).await?;
            if command == execute {
                return Ok(answer);
            }
        }
        Err(qmp_error(step, "no answer"))
    };
    tokio::time::timeout(DEADLINE, exchange).await.map_err(|_| qmp_error(step, "QEMU did not answer in time"))?
}

/// The next answer (`return` or `error`), skipping events.
async fn answer<R>(lines: &mut tokio::io::Lines<R>, step: &'static str) -> Result<Value, LocalError>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    loop {
        let mut message = next_message(lines, step).await?;
        if let Some(value) = message.get_mut("return") {
            return Ok(value.take());
        }
        if let Some(error) = message.get("error") {
            let description = error.get("desc").and_then(Value::as_str).unwrap_or("an error without description");
            return Err(qmp_error(step, description));
        }
    }
}

async fn next_message<R>(lines: &mut tokio::io::Lines<R>, step: &'static str) -> Result<Value, LocalError>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let line = lines.next_line().await?.ok_or_else(|| qmp_error(step, "QEMU closed the socket"))?;
    serde_json::from_str(&line).map_err(|error| qmp_error(step, &format!("not JSON ({error}): {line}")))
}

fn qmp_error(step: &'static str, what: &str) -> LocalError {
    LocalError::Step { step, status: None, stderr_tail: what.to_owned() }
}
