//! The DynamoDB endpoint the stack hands out (`LocalStack::dynamodb_endpoint`, the run command's
//! "DynamoDB Local" line): a byte-for-byte TCP relay to DynamoDB Local that reports each exchange to
//! `Activity`, so that a record written by a test, a tool or a person wakes the stream pollers as a
//! function's write does (the functions themselves reach DynamoDB Local directly, or through the fault
//! proxy: their invocations are what wakes the pollers). It reads nothing of what it relays.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::activity::Activity;

/// A running relay; it stops when dropped.
pub struct DynamoDbRelay {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl DynamoDbRelay {
    /// Listens on a free 127.0.0.1 port and relays every connection to DynamoDB Local's `port`.
    pub async fn start(port: u16, activity: Arc<Activity>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let upstream = SocketAddr::from(([127, 0, 0, 1], port));
        tokio::spawn(serve(listener, upstream, activity, shutdown_rx));
        Ok(DynamoDbRelay { address, shutdown })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for DynamoDbRelay {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    activity: Arc<Activity>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let client = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => {
                    crate::accept_failed().await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let activity = Arc::clone(&activity);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            // Unreachable DynamoDB Local: the client sees its connection closed, as it would.
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                _ = async {
                    tokio::join!(
                        pipe(client_read, server_write, &activity),
                        pipe(server_read, client_write, &activity),
                    )
                } => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// Copies one direction until it ends, then ends the other side's writing too.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, activity: &Activity) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
                activity.touch();
            }
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_go_through_both_ways_and_each_exchange_is_activity() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = upstream.accept().await.unwrap();
            let mut buffer = [0u8; 5];
            socket.read_exact(&mut buffer).await.unwrap();
            socket.write_all(&buffer.map(|b| b.to_ascii_uppercase())).await.unwrap();
        });
        let activity = Arc::new(Activity::default());
        let relay = DynamoDbRelay::start(port, Arc::clone(&activity)).await.unwrap();
        let mut client = TcpStream::connect(relay.address).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!activity.busy(std::time::Duration::from_millis(100)));
        client.write_all(b"hello").await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"HELLO");
        assert!(activity.busy(std::time::Duration::from_millis(100)));
    }
}
