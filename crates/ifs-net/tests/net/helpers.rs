//! Start loopback swarms and wait for their events.

use std::time::Duration;

use ifs_net::{Client, NetConfig, NetEvent, PeerId};
use tokio::sync::mpsc;

/// How long any single expected event may take on a loaded 2-core machine.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A swarm under test: its client and its event stream.
pub struct TestNode {
    pub client: Client,
    pub events: mpsc::Receiver<NetEvent>,
}

impl TestNode {
    pub fn peer_id(&self) -> PeerId {
        self.client.local_peer_id()
    }

    /// Wait for the first event `pick` takes (`Ok`), skipping the ones it
    /// hands back (`Err`); skipped gossip is reported as ignored.
    pub async fn wait_for<T>(
        &mut self,
        mut pick: impl FnMut(NetEvent) -> Result<T, NetEvent>,
    ) -> T {
        let client = self.client.clone();
        let events = &mut self.events;
        let fut = async {
            loop {
                let event = events.recv().await.expect("event channel open");
                match pick(event) {
                    Ok(found) => return found,
                    Err(NetEvent::Gossip {
                        id, propagated_by, ..
                    }) => {
                        let _ = client
                            .report_validation(id, propagated_by, ifs_net::Acceptance::Ignore)
                            .await;
                    }
                    Err(_) => {}
                }
            }
        };
        tokio::time::timeout(EVENT_TIMEOUT, fut)
            .await
            .expect("expected event in time")
    }
}

/// A config listening on a free loopback TCP port.
pub fn loopback_config() -> NetConfig {
    NetConfig::listening_on(vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")])
}

pub async fn start(cfg: NetConfig) -> TestNode {
    let (client, events) = ifs_net::spawn(cfg).await.expect("swarm starts");
    TestNode { client, events }
}

pub async fn start_loopback() -> TestNode {
    start(loopback_config()).await
}

/// Dial `to` from `from` and wait until the connection is up.
pub async fn connect(from: &TestNode, to: &TestNode) {
    let addrs = to.client.listen_addrs().await.expect("listen addrs");
    let addr = addrs.into_iter().next().expect("one listen address");
    let peer = from.client.dial(addr).await.expect("dial succeeds");
    assert_eq!(peer, to.peer_id());
}

/// Retry `f` every 100 ms until it returns `Some`, within [`EVENT_TIMEOUT`].
pub async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let fut = async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(EVENT_TIMEOUT, fut)
        .await
        .expect("condition reached in time")
}
