//! An ERP connector built on first use: the ERP settings secret is read when the first command
//! (or poll) needs the ERP, not while a Lambda container starts, and the built connector is
//! kept for the container's life (its credentials then follow the secret as
//! [`AnyConnector::from_settings_refreshing`] describes). A failed read leaves nothing cached
//! and is [`ErpError::Retryable`], so the message that needed the ERP is retried, never parked.
//! The ERP kind is known beforehand (the deployment names it), because cross-references and
//! cursors are keyed by it before any request.

use crate::commands::{CustomerUpsert, ErpCommand, ExternalRef};
use crate::connector::{DocumentReadBack, ErpConnector, ErpCustomerMatch, ErpCustomerRecord};
use crate::error::ErpError;
use crate::fields::FieldsOutcome;
use crate::kind::ErpKind;
use crate::settings::AnyConnector;
use ledgerbridge_core::ids::ErpDocumentId;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What builds the connector: reads the settings and calls
/// [`AnyConnector::from_settings_refreshing`].
pub type ConnectorInit = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<AnyConnector, ErpError>> + Send>> + Send + Sync,
>;

/// An [`AnyConnector`] built by `init` on the first call that needs one. Clones share it.
#[derive(Clone)]
pub struct LazyConnector {
    kind: ErpKind,
    cell: Arc<tokio::sync::OnceCell<AnyConnector>>,
    init: ConnectorInit,
}

impl std::fmt::Debug for LazyConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyConnector")
            .field("kind", &self.kind)
            .field("built", &self.cell.initialized())
            .finish()
    }
}

impl LazyConnector {
    /// `kind` is the ERP the deployment names; settings of another kind are refused (retried,
    /// so the deployment's alarms show it) rather than used.
    pub fn new(kind: ErpKind, init: ConnectorInit) -> Self {
        LazyConnector {
            kind,
            cell: Arc::new(tokio::sync::OnceCell::new()),
            init,
        }
    }

    /// A connector built already (its settings read at start); `init` builds it again only
    /// if ever needed (it is not: the cell keeps this one).
    pub fn ready(connector: AnyConnector, init: ConnectorInit) -> Self {
        LazyConnector {
            kind: connector.kind(),
            cell: Arc::new(tokio::sync::OnceCell::new_with(Some(connector))),
            init,
        }
    }

    /// The connector, built now if this is the first use (concurrent first uses build it once).
    pub async fn connector(&self) -> Result<&AnyConnector, ErpError> {
        let kind = self.kind;
        self.cell
            .get_or_try_init(|| {
                let init = (self.init)();
                async move {
                    let c = init.await?;
                    if c.kind() != kind {
                        return Err(ErpError::Retryable {
                            erp: kind.as_str(),
                            status: None,
                            message: format!(
                                "the ERP settings secret is for {}, the deployment names {kind} (LEDGERBRIDGE_ERP_KIND)",
                                c.kind()
                            ),
                            retry_after: None,
                            may_have_committed: false,
                        });
                    }
                    Ok(c)
                }
            })
            .await
    }

    /// Whether the connector has been built (the settings read).
    pub fn is_built(&self) -> bool {
        self.cell.initialized()
    }
}

impl ErpConnector for LazyConnector {
    fn erp(&self) -> &'static str {
        self.kind.as_str()
    }

    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        self.connector().await?.find_by_reference(reference).await
    }

    async fn read_back(
        &self,
        reference: &ExternalRef,
        erp_id: &ErpDocumentId,
    ) -> Result<DocumentReadBack, ErpError> {
        self.connector().await?.read_back(reference, erp_id).await
    }

    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        self.connector().await?.create(command).await
    }

    async fn update_customer(
        &self,
        id: &ErpDocumentId,
        customer: &CustomerUpsert,
    ) -> Result<(), ErpError> {
        self.connector().await?.update_customer(id, customer).await
    }

    async fn find_customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<ErpCustomerMatch>, ErpError> {
        self.connector().await?.find_customer_by_email(email).await
    }

    async fn set_customer_fields(
        &self,
        customer_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<FieldsOutcome, ErpError> {
        self.connector()
            .await?
            .set_customer_fields(customer_id, values)
            .await
    }

    async fn customers_changed_since(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<ErpCustomerRecord>, ErpError> {
        self.connector()
            .await?
            .customers_changed_since(since, limit)
            .await
    }
}
