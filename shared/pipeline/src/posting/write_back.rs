//! Write-back: the ERP id into the Stripe object's metadata, once.

use super::Poster;
use crate::outcome::StageError;
use crate::store::StateStore;
use ledgerbridge_core::ids::{ErpDocumentId, StripeObjectId};
use ledgerbridge_core::keys::XrefKind;
use ledgerbridge_core::Clock;
use ledgerbridge_erp::ErpConnector;
use ledgerbridge_messages::ErpCommandV1;
use ledgerbridge_stripe::api::StripeApi;
use ledgerbridge_stripe::client::StripeObjectKind;
use ledgerbridge_stripe::StripeError;

impl<C, S, A, K> Poster<C, S, A, K>
where
    C: ErpConnector,
    S: StateStore,
    A: StripeApi,
    K: Clock,
{
    /// Write the ERP id into the Stripe object's metadata once (`ledgerbridge_*` keys, which
    /// the transform recognises so the resulting `*.updated` event is not booked again).
    pub(super) async fn write_back(
        &self,
        msg: &ErpCommandV1,
        erp_id: &ErpDocumentId,
    ) -> Result<(), StageError> {
        let (Some(wb), Some(stripe)) = (&msg.write_back, &self.stripe) else {
            return Ok(());
        };
        let done_kind = XrefKind::write_back(&wb.key);
        let obj = StripeObjectId::new(&wb.object_id);
        if self
            .store
            .get_xref(&obj, done_kind.as_str())
            .await?
            .is_some()
        {
            return Ok(());
        }
        let written = match StripeObjectKind::from_path(&wb.object_path) {
            Some(kind) => {
                stripe
                    .set_metadata(kind, &wb.object_id, &wb.key, erp_id.as_str())
                    .await
            }
            None => Err(StripeError::InvalidRequest(format!(
                "no metadata write-back for {}",
                wb.object_path
            ))),
        };
        match written {
            Ok(()) => self.record_xref(&obj, done_kind.as_str(), erp_id).await,
            Err(e) if e.is_retriable() => Err(StageError::retry(e)),
            Err(e) => {
                tracing::warn!(error = %e, object = %wb.object_id, "Write-back to Stripe rejected; the cross-reference holds the link");
                Ok(())
            }
        }
    }
}
