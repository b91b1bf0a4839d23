//! Run-time selection of the connector: [`ErpSettings`] (one JSON secret value holding the
//! connector's configuration and credentials) and [`AnyConnector`] (an enum over the three
//! connectors implementing [`ErpConnector`] by delegation).
//!
//! ```text
//! let settings = ErpSettings::from_json(&secret)?;
//! let connector = AnyConnector::from_settings(settings)?;
//! ```

use crate::commands::{CustomerUpsert, ErpCommand, ExternalRef};
use crate::connector::{Credentials, ErpConnector};
use crate::epicor::{EpicorAuth, EpicorConfig, EpicorConnector, EpicorCredentials};
use crate::error::ErpError;
use crate::kind::ErpKind;
use crate::sage500::{Sage500Config, Sage500Connector, Sage500Credentials};
use crate::sagepro::{SageProConfig, SageProConnector, SageProCredentials};
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_core::secrets::Secret;
use serde::{Deserialize, Deserializer};
use std::pin::Pin;
use std::sync::Arc;

/// Deserialise a string straight into a [`Secret`], so the value never sits in a plain field.
pub(crate) fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
    String::deserialize(d).map(Secret::new)
}

pub(crate) fn opt_secret<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Secret<String>>, D::Error> {
    Option::<String>::deserialize(d).map(|o| o.map(Secret::new))
}

/// Epicor: [`EpicorConfig`] fields plus `api_key` and either `user` + `password` (Basic) or
/// `bearer_token`.
#[derive(Debug, Clone, Deserialize)]
pub struct EpicorSettings {
    #[serde(flatten)]
    pub config: EpicorConfig,
    #[serde(deserialize_with = "secret")]
    pub api_key: Secret<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub password: Option<Secret<String>>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub bearer_token: Option<Secret<String>>,
}

/// Sage Pro: [`SageProConfig`] fields plus `api_key`.
#[derive(Debug, Clone, Deserialize)]
pub struct SageProSettings {
    #[serde(flatten)]
    pub config: SageProConfig,
    #[serde(deserialize_with = "secret")]
    pub api_key: Secret<String>,
}

/// Sage 500: [`Sage500Config`] fields plus `api_key` (HTTP facade) or `user` + `password`
/// (SQL Server login).
#[derive(Debug, Clone, Deserialize)]
pub struct Sage500Settings {
    #[serde(flatten)]
    pub config: Sage500Config,
    #[serde(default, deserialize_with = "opt_secret")]
    pub api_key: Option<Secret<String>>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub password: Option<Secret<String>>,
}

/// Which connector to build, with its configuration and credentials (see
/// docs/erp-connectors.md for the JSON shape of each kind).
// Built once per process; the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ErpSettings {
    Epicor(EpicorSettings),
    Sagepro(SageProSettings),
    Sage500(Sage500Settings),
}

impl ErpSettings {
    /// Parse the settings from one JSON secret value. Error messages name the problem (missing
    /// field, unknown kind, line and column) but never echo a value from the document.
    pub fn from_json(secret: &Secret<String>) -> Result<ErpSettings, ErpError> {
        serde_json::from_str(secret.expose()).map_err(|e| ErpError::Config {
            erp: "settings",
            message: describe_json_error(&e),
        })
    }

    /// Which ERP the settings are for (the `kind` field).
    pub fn kind(&self) -> ErpKind {
        match self {
            ErpSettings::Epicor(_) => ErpKind::Epicor,
            ErpSettings::Sagepro(_) => ErpKind::SagePro,
            ErpSettings::Sage500(_) => ErpKind::Sage500,
        }
    }
}

/// serde_json messages can quote the offending value ("invalid type: string \"…\""), which may
/// be a secret placed in the wrong field; keep only messages that name fields or the kind.
fn describe_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let safe = ["missing field", "unknown variant", "missing field `kind`"]
        .iter()
        .any(|p| msg.starts_with(p));
    let what = if safe {
        msg.split(" at line ").next().unwrap_or("").to_owned()
    } else {
        match e.classify() {
            serde_json::error::Category::Io => "could not be read".to_owned(),
            serde_json::error::Category::Syntax => "is not valid JSON".to_owned(),
            serde_json::error::Category::Eof => "ends early".to_owned(),
            serde_json::error::Category::Data => "has a value of the wrong type".to_owned(),
        }
    };
    format!(
        "ERP settings JSON: {what} (line {}, column {})",
        e.line(),
        e.column()
    )
}

fn config_err(erp: &'static str, message: &str) -> ErpError {
    ErpError::Config {
        erp,
        message: message.to_owned(),
    }
}

/// One of the three connectors, chosen at run time.
// Built once per process; the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyConnector {
    Epicor(EpicorConnector),
    SagePro(SageProConnector),
    Sage500(Sage500Connector),
}

impl AnyConnector {
    /// Which ERP this connector speaks to.
    pub fn kind(&self) -> ErpKind {
        match self {
            AnyConnector::Epicor(_) => ErpKind::Epicor,
            AnyConnector::SagePro(_) => ErpKind::SagePro,
            AnyConnector::Sage500(_) => ErpKind::Sage500,
        }
    }

    /// Build the connector the settings name, with fixed credentials (a test, a settings
    /// file read once). Deployments use [`AnyConnector::from_settings_refreshing`].
    pub fn from_settings(settings: ErpSettings) -> Result<AnyConnector, ErpError> {
        Self::build(settings, None)
    }

    /// Build the connector with credentials that follow the settings secret: `fetch` reads
    /// the settings JSON afresh (from Secrets Manager, say) and is called on a 401/403 (then
    /// the request is sent once more) and before a request once the credentials are older
    /// than `max_age` (the secret cache TTL, at most 300 s in a deployment). Only the
    /// credentials are taken from a re-read; a change of ERP kind or of other settings needs a
    /// restart.
    pub fn from_settings_refreshing<F, Fut>(
        settings: ErpSettings,
        fetch: F,
        max_age: std::time::Duration,
    ) -> Result<AnyConnector, ErpError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Secret<String>, ErpError>> + Send + 'static,
    {
        let fetch: SettingsFetch = Arc::new(move || Box::pin(fetch()));
        Self::build(settings, Some((fetch, max_age)))
    }

    fn build(
        settings: ErpSettings,
        refresh: Option<(SettingsFetch, std::time::Duration)>,
    ) -> Result<AnyConnector, ErpError> {
        match settings {
            ErpSettings::Epicor(s) => {
                let (config, value) = epicor_credentials(s)?;
                let creds = credentials(value, refresh, |s| match s {
                    ErpSettings::Epicor(s) => epicor_credentials(s).map(|(_, c)| c),
                    _ => Err(kind_changed(ErpKind::Epicor)),
                });
                Ok(AnyConnector::Epicor(EpicorConnector::new(config, creds)?))
            }
            ErpSettings::Sagepro(s) => {
                let value = SageProCredentials { api_key: s.api_key };
                let creds = credentials(value, refresh, |s| match s {
                    ErpSettings::Sagepro(s) => Ok(SageProCredentials { api_key: s.api_key }),
                    _ => Err(kind_changed(ErpKind::SagePro)),
                });
                Ok(AnyConnector::SagePro(SageProConnector::new(
                    s.config, creds,
                )?))
            }
            ErpSettings::Sage500(s) => {
                let (config, value) = sage500_credentials(s);
                let creds = credentials(value, refresh, |s| match s {
                    ErpSettings::Sage500(s) => Ok(sage500_credentials(s).1),
                    _ => Err(kind_changed(ErpKind::Sage500)),
                });
                Ok(AnyConnector::Sage500(Sage500Connector::new(config, creds)?))
            }
        }
    }
}

type SettingsFetch = Arc<
    dyn Fn() -> Pin<Box<dyn std::future::Future<Output = Result<Secret<String>, ErpError>> + Send>>
        + Send
        + Sync,
>;

/// Fixed credentials, or credentials re-read through `refresh` and cut out of the settings by
/// `extract`.
fn credentials<C>(
    value: C,
    refresh: Option<(SettingsFetch, std::time::Duration)>,
    extract: fn(ErpSettings) -> Result<C, ErpError>,
) -> Credentials<C>
where
    C: Clone + Send + Sync + 'static,
{
    let Some((fetch, max_age)) = refresh else {
        return Credentials::fixed(value);
    };
    Credentials::refreshable(value, move || {
        let fetch = fetch.clone();
        async move { extract(ErpSettings::from_json(&fetch().await?)?) }
    })
    .with_max_age(max_age)
}

fn kind_changed(was: ErpKind) -> ErpError {
    config_err(
        was.as_str(),
        "the re-read ERP settings name another ERP kind; restart to switch ERP",
    )
}

fn epicor_credentials(s: EpicorSettings) -> Result<(EpicorConfig, EpicorCredentials), ErpError> {
    let auth = match (s.user, s.password, s.bearer_token) {
        (Some(user), Some(password), None) => EpicorAuth::Basic { user, password },
        (None, None, Some(token)) => EpicorAuth::Bearer(token),
        _ => {
            return Err(config_err(
                ErpKind::Epicor.as_str(),
                "give either \"user\" and \"password\" or \"bearer_token\"",
            ))
        }
    };
    Ok((
        s.config,
        EpicorCredentials {
            api_key: s.api_key,
            auth,
        },
    ))
}

fn sage500_credentials(s: Sage500Settings) -> (Sage500Config, Sage500Credentials) {
    (
        s.config,
        Sage500Credentials {
            api_key: s.api_key,
            user: s.user,
            password: s.password,
        },
    )
}

impl ErpConnector for AnyConnector {
    fn erp(&self) -> &'static str {
        match self {
            AnyConnector::Epicor(c) => c.erp(),
            AnyConnector::SagePro(c) => c.erp(),
            AnyConnector::Sage500(c) => c.erp(),
        }
    }

    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        match self {
            AnyConnector::Epicor(c) => c.find_by_reference(reference).await,
            AnyConnector::SagePro(c) => c.find_by_reference(reference).await,
            AnyConnector::Sage500(c) => c.find_by_reference(reference).await,
        }
    }

    async fn read_back(
        &self,
        reference: &ExternalRef,
        erp_id: &ErpDocumentId,
    ) -> Result<crate::connector::DocumentReadBack, ErpError> {
        match self {
            AnyConnector::Epicor(c) => c.read_back(reference, erp_id).await,
            AnyConnector::SagePro(c) => c.read_back(reference, erp_id).await,
            AnyConnector::Sage500(c) => c.read_back(reference, erp_id).await,
        }
    }

    async fn journal_state(
        &self,
        reference: &ExternalRef,
        erp_id: &ErpDocumentId,
    ) -> Result<crate::connector::LedgerState, ErpError> {
        match self {
            AnyConnector::Epicor(c) => c.journal_state(reference, erp_id).await,
            AnyConnector::SagePro(c) => c.journal_state(reference, erp_id).await,
            AnyConnector::Sage500(c) => c.journal_state(reference, erp_id).await,
        }
    }

    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        match self {
            AnyConnector::Epicor(c) => c.create(command).await,
            AnyConnector::SagePro(c) => c.create(command).await,
            AnyConnector::Sage500(c) => c.create(command).await,
        }
    }

    async fn update_customer(
        &self,
        id: &ErpDocumentId,
        customer: &CustomerUpsert,
    ) -> Result<(), ErpError> {
        match self {
            AnyConnector::Epicor(c) => c.update_customer(id, customer).await,
            AnyConnector::SagePro(c) => c.update_customer(id, customer).await,
            AnyConnector::Sage500(c) => c.update_customer(id, customer).await,
        }
    }

    async fn find_customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<crate::connector::ErpCustomerMatch>, ErpError> {
        match self {
            AnyConnector::Epicor(c) => c.find_customer_by_email(email).await,
            AnyConnector::SagePro(c) => c.find_customer_by_email(email).await,
            AnyConnector::Sage500(c) => c.find_customer_by_email(email).await,
        }
    }

    async fn set_customer_fields(
        &self,
        customer_id: &str,
        values: &std::collections::BTreeMap<String, String>,
    ) -> Result<crate::fields::FieldsOutcome, ErpError> {
        match self {
            AnyConnector::Epicor(c) => c.set_customer_fields(customer_id, values).await,
            AnyConnector::SagePro(c) => c.set_customer_fields(customer_id, values).await,
            AnyConnector::Sage500(c) => c.set_customer_fields(customer_id, values).await,
        }
    }

    async fn customers_changed_since(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<crate::connector::ErpCustomerRecord>, ErpError> {
        match self {
            AnyConnector::Epicor(c) => c.customers_changed_since(since, limit).await,
            AnyConnector::SagePro(c) => c.customers_changed_since(since, limit).await,
            AnyConnector::Sage500(c) => c.customers_changed_since(since, limit).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErpErrorKind;

    fn parse(s: &str) -> Result<ErpSettings, ErpError> {
        ErpSettings::from_json(&Secret::new(s.to_owned()))
    }

    const EPICOR: &str = r#"{"kind":"epicor","base_url":"https://erp.example.com/KineticLive",
        "company":"EPIC06","invoice_group_id":"STRIPE","cash_group_id":"STRIPE",
        "journal":{"book_id":"MAIN","journal_code":"GJ","group_id":"STRIPE"},
        "api_key":"k-very-secret","user":"svc","password":"p-very-secret"}"#;

    #[test]
    fn epicor_settings_build_a_connector_and_never_print_secrets() {
        let s = parse(EPICOR).unwrap();
        assert_eq!(s.kind(), ErpKind::Epicor);
        assert_eq!(s.kind().as_str(), "epicor");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
        let ErpSettings::Epicor(e) = &s else {
            panic!("wrong kind")
        };
        assert_eq!(e.config.company, "EPIC06");
        assert_eq!(e.config.timeout_ms, 10_000);
        let c = AnyConnector::from_settings(s).unwrap();
        assert_eq!(c.erp(), "epicor");
        assert_eq!(c.kind(), ErpKind::Epicor);
        assert!(!format!("{c:?}").contains("very-secret"));
    }

    #[test]
    fn epicor_needs_exactly_one_user_identity() {
        let both = EPICOR.replace(r#""user":"svc""#, r#""bearer_token":"t","user":"svc""#);
        let err = AnyConnector::from_settings(parse(&both).unwrap()).unwrap_err();
        assert!(matches!(err, ErpError::Config { .. }), "{err}");
        let none = EPICOR.replace(r#","user":"svc","password":"p-very-secret""#, "");
        assert!(AnyConnector::from_settings(parse(&none).unwrap()).is_err());
        let bearer = EPICOR.replace(
            r#""user":"svc","password":"p-very-secret""#,
            r#""bearer_token":"t""#,
        );
        assert!(AnyConnector::from_settings(parse(&bearer).unwrap()).is_ok());
    }

    #[test]
    fn sagepro_and_sage500_settings() {
        let s = parse(r#"{"kind":"sagepro","base_url":"https://sp.example.com","api_key":"k"}"#)
            .unwrap();
        assert_eq!(AnyConnector::from_settings(s).unwrap().erp(), "sagepro");
        let s = parse(
            r#"{"kind":"sage500","company":"SOA","base_url":"https://agent.example.com",
                "api_key":"k","reference_max_len":40,
                "docs":{"customer":{"procedure":"spARapiCustomerIns","header_table":"StgCustomer",
                  "target_table":"tarCustomer","reference_column":"UserFld2","key_column":"CustKey"},
                  "sales_order":{"procedure":"spSOapiSalesOrdIns","header_table":"StgSalesOrder",
                  "line_table":"StgSOLine","target_table":"tsoSalesOrder",
                  "reference_column":"CustPONo","key_column":"TranNo"},
                  "invoice":{"procedure":"p","header_table":"h","target_table":"t",
                  "reference_column":"r","key_column":"k","line_table":"l"},
                  "credit_memo":{"procedure":"p","header_table":"h","target_table":"t",
                  "reference_column":"r","key_column":"k","line_table":"l"},
                  "cash_receipt":{"procedure":"p","header_table":"h","target_table":"t",
                  "reference_column":"r","key_column":"k","line_table":"l"},
                  "journal_entry":{"procedure":"p","header_table":"h","target_table":"t",
                  "reference_column":"r","key_column":"k"}}}"#,
        )
        .unwrap();
        let ErpSettings::Sage500(x) = &s else {
            panic!("wrong kind")
        };
        assert_eq!(x.config.docs.customer.reference_column, "UserFld2");
        assert_eq!(x.config.reference_max_len, 40);
        assert_eq!(AnyConnector::from_settings(s).unwrap().erp(), "sage500");
        // The HTTP transport needs its key.
        let s = parse(r#"{"kind":"sage500","company":"SOA","base_url":"https://a.example.com"}"#)
            .unwrap();
        assert!(AnyConnector::from_settings(s).is_err());
        // An identifier that could not be placed in SQL is refused at construction.
        let s = parse(
            r#"{"kind":"sage500","company":"SOA","base_url":"https://a.example.com","api_key":"k",
                "docs":{"customer":{"procedure":"sp; DROP TABLE x","header_table":"h",
                "target_table":"t","reference_column":"r","key_column":"k"},
                "sales_order":{"procedure":"p","header_table":"h","target_table":"t","reference_column":"r","key_column":"k"},
                "invoice":{"procedure":"p","header_table":"h","target_table":"t","reference_column":"r","key_column":"k"},
                "credit_memo":{"procedure":"p","header_table":"h","target_table":"t","reference_column":"r","key_column":"k"},
                "cash_receipt":{"procedure":"p","header_table":"h","target_table":"t","reference_column":"r","key_column":"k"},
                "journal_entry":{"procedure":"p","header_table":"h","target_table":"t","reference_column":"r","key_column":"k"}}}"#,
        )
        .unwrap();
        assert_eq!(
            AnyConnector::from_settings(s).unwrap_err().kind(),
            ErpErrorKind::Permanent
        );
    }

    #[cfg(not(feature = "sqlserver"))]
    #[test]
    fn sqlserver_transport_needs_the_feature() {
        let s = parse(
            r#"{"kind":"sage500","company":"SOA","transport":"sqlserver",
                "sqlserver":{"host":"sql","database":"mas500_app"},"user":"u","password":"p"}"#,
        )
        .unwrap();
        let err = AnyConnector::from_settings(s).unwrap_err();
        assert!(err.to_string().contains("sqlserver"), "{err}");
    }

    #[test]
    fn parse_errors_name_the_problem_but_never_echo_values() {
        let err = parse(r#"{"kind":"sagepro","api_key":"k"}"#).unwrap_err();
        assert!(
            err.to_string().contains("missing field `base_url`"),
            "{err}"
        );
        let err = parse(r#"{"kind":"oracle"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        // A secret pasted into a numeric field must not appear in the message.
        let err = parse(
            r#"{"kind":"sagepro","base_url":"x","api_key":"k","timeout_ms":"hunter2-secret"}"#,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("wrong type"), "{err}");
        let err = parse("not json").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        assert_eq!(err.kind(), ErpErrorKind::Permanent);
    }
}
