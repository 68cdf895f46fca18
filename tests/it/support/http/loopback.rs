//! Small helpers for tests with their own loopback servers and connectors.

use coupler::runtime::connector::{ChangeQuery, Connector, Record};

/// Serves `app` on 127.0.0.1 (a free port) in a background thread with its own runtime;
/// returns the port.
pub fn serve(app: axum::Router) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap().port()).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
    });
    rx.recv().unwrap()
}

/// Every record of a table, through the change stream.
pub async fn read_all(c: &dyn Connector, table: &str) -> Vec<Record> {
    let q = ChangeQuery {
        table,
        filter: None,
        since: None,
        exclude_modified_by: None,
        page_size: 1000,
        fields: None,
    };
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = c.read_changes(&q, after.as_ref()).await.unwrap();
        all.extend(page.records);
        match page.next {
            Some(n) => after = Some(n),
            None => return all,
        }
    }
}
