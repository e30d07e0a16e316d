//! A TCP proxy a test can cut and restore: the database or Latchkey
//! "going away" without stopping it.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards TCP connections to a target while up; when cut, drops every open
/// connection and refuses new ones. Runs on its own thread and runtime, so
/// blocking database calls on the test thread cannot stall it.
pub struct Proxy {
    pub port: u16,
    up: Arc<Mutex<bool>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub fn start(target: String) -> Proxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let up = Arc::new(Mutex::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !*up2.lock().unwrap() {
                        drop(inbound);
                        continue;
                    }
                    let target = target.clone();
                    let handle = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns2.lock().unwrap().push(handle);
                }
            });
        });
        Proxy { port, up, conns }
    }

    pub fn cut(&self) {
        *self.up.lock().unwrap() = false;
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    pub fn restore(&self) {
        *self.up.lock().unwrap() = true;
    }
}

/// A `TestApp` on a fresh PostgreSQL database whose connections all run
/// through a [`Proxy`] the test can cut and restore (an outage), with the
/// pool's connect timeout set to `connect_timeout_secs`.
pub async fn postgres_app_behind_proxy(connect_timeout_secs: u64) -> (super::TestApp, Proxy) {
    let db = super::TestDb::postgres();
    let real = url::Url::parse(&db.url).expect("postgres url");
    let target = format!(
        "{}:{}",
        real.host_str().expect("host"),
        real.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target);
    let mut via_proxy = real.clone();
    via_proxy.set_port(Some(proxy.port)).expect("port");
    let proxied = via_proxy.to_string();
    let app = super::TestApp::spawn_with(db, |c| {
        c.database.url = proxied;
        c.database.connect_timeout_secs = connect_timeout_secs;
    })
    .await;
    (app, proxy)
}
