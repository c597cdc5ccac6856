//! How the shells build their HTTP clients: every one on rustls with `ring` as the one
//! crypto provider (lettre's SMTP already uses it; reqwest's own default would link a
//! second, `aws-lc-rs`), and [`Lazy`] for clients that an idle daemon may never need.
//!
//! Owns the process's default rustls crypto provider; must not hold any client itself.

use tokio::sync::OnceCell;

/// `reqwest::Client::builder()`, after making `ring` the process's rustls provider (reqwest
/// is built without a provider of its own and takes the process default). Every client of
/// the shells starts here.
pub fn builder() -> reqwest::ClientBuilder {
    // Fails only when a provider is already installed, which is then this one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// An HTTP client built on first use: building one loads and parses the system's root
/// certificates, which a daemon sending nothing over HTTP should not pay for (in heap, and
/// in the code it pages in).
pub struct Lazy {
    cell: OnceCell<reqwest::Client>,
    build: fn() -> reqwest::ClientBuilder,
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy").field("built", &self.cell.initialized()).finish()
    }
}

impl Lazy {
    /// A client that `build` configures (starting from [`builder`]) when first asked for.
    pub const fn new(build: fn() -> reqwest::ClientBuilder) -> Lazy {
        Lazy {
            cell: OnceCell::const_new(),
            build,
        }
    }

    /// The client, built now if this is the first call. A failed build (no usable root
    /// certificates, say) is reported and tried again on the next call.
    pub async fn get(&self) -> Result<&reqwest::Client, String> {
        self.cell
            .get_or_try_init(|| async { (self.build)().build() })
            .await
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))
    }
}
