//! Real QUIC (quinn) through the proxy with 10 % loss each way: the data still arrives intact,
//! which shows the relay, the mappings and the scheduler carry a real protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chatroom_netsim::model::{Impairment, LinkConfig};
use chatroom_netsim::proxy::{Proxy, ProxyConfig};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const ALPN: &[u8] = b"netsim-test";
const SEED: u64 = 11;
const PAYLOAD_LEN: usize = 256 * 1024;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_endpoint(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<quinn::Endpoint> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    Ok(quinn::Endpoint::server(config, "127.0.0.1:0".parse()?)?)
}

fn client_config(cert: CertificateDer<'static>) -> anyhow::Result<quinn::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?)))
}

/// Accepts one connection and echoes one bidirectional stream back.
async fn serve_one(endpoint: quinn::Endpoint) -> anyhow::Result<()> {
    let connection = endpoint.accept().await.context("no connection")?.await?;
    let (mut send, mut recv) = connection.accept_bi().await?;
    let data = recv.read_to_end(PAYLOAD_LEN).await?;
    send.write_all(&data).await?;
    send.finish()?;
    // Dropping the connection would close it at once, cutting off unacknowledged data: keep it
    // until the client closes.
    connection.closed().await;
    Ok(())
}

async fn exchange(proxy_addr: SocketAddr, config: quinn::ClientConfig) -> anyhow::Result<Vec<u8>> {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(config);
    let connection = endpoint.connect(proxy_addr, "localhost")?.await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    let payload: Vec<u8> = (0..PAYLOAD_LEN).map(|i| (i * 7 % 251) as u8).collect();
    send.write_all(&payload).await?;
    send.finish()?;
    let echoed = recv.read_to_end(PAYLOAD_LEN).await?;
    connection.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok(echoed)
}

#[tokio::test]
async fn quic_exchanges_data_correctly_through_ten_percent_loss() -> anyhow::Result<()> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));

    let server = server_endpoint(cert.clone(), key)?;
    let link = LinkConfig::symmetric(Impairment {
        loss: 0.10,
        delay: Duration::from_millis(5),
        ..Impairment::default()
    });
    let config = ProxyConfig::new("127.0.0.1:0".parse()?, server.local_addr()?)
        .with_link(link)
        .with_seed(SEED);
    let proxy = Proxy::start(config).await?;
    let serving = tokio::spawn(serve_one(server));

    let echoed = tokio::time::timeout(
        Duration::from_secs(30),
        exchange(proxy.local_addr(), client_config(cert)?),
    )
    .await
    .context("the exchange timed out")??;
    let expected: Vec<u8> = (0..PAYLOAD_LEN).map(|i| (i * 7 % 251) as u8).collect();
    assert!(echoed == expected, "the echoed data differs (seed {SEED})");
    // The server waits for the client's close, which the loss may eat; it is not awaited, but
    // if it already ended, it must have ended well.
    if serving.is_finished() {
        serving.await??;
    } else {
        serving.abort();
    }

    let stats = proxy.stats();
    assert!(stats.up.dropped_random > 0 && stats.down.dropped_random > 0, "{stats:#?}");
    proxy.shutdown().await;
    Ok(())
}
