//! A T-SQL emulation of the Sage 500 database, for testing the exact statements the SQL Server
//! adapter sends (`ledgerbridge_erp::sage500::tsql`) without a SQL Server.
//!
//! Each batch is tokenized with `sqlparser`'s SQL Server dialect and split into statements;
//! `INSERT`, `SELECT`, `UPDATE` and `DECLARE` are parsed into its syntax tree, `EXEC` and `SET`
//! (which it does not parse with several `OUTPUT` arguments) are read from the tokens. The
//! statements then run against the same engine as the HTTP facade (`super::sage500`):
//! `spGetNextSurrogateKey 'tsmMigrateSession'`, `tsmCompanySetup` / `tsmMigrateSession` rows,
//! staging inserts checked against the real schemas, the API procedures with exactly their 11
//! positional parameters (OUTPUT only where the procedure declares it, written back only when
//! the caller asked for it, as SQL Server does), and reads of staging, the migration log and
//! the `t…` tables. Anything else is refused with a SQL Server error, so a statement the
//! emulation does not know fails the test instead of passing unchecked.

use super::sage500::{self, CallArgs};
use super::sage500_schema::SqlError;
use crate::store::{FilterValue, Store};
use crate::{AppState, ErpKind};
use ledgerbridge_erp::error::ErpError;
use ledgerbridge_erp::sage500::{SqlCell, SqlConnect, SqlSession, SqlValue};
use serde_json::{Map, Value};
use sqlparser::ast::{
    BinaryOperator, Expr, SelectItem, SetExpr, Statement, TableFactor, TableObject, UnaryOperator,
};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const ERP: &str = ErpKind::Sage500.as_str();

/// One executed batch: its text and bound values.
pub type ExecutedBatch = (String, Vec<SqlValue>);

/// Opens emulated connections to the sandbox's Sage 500 database.
#[derive(Clone)]
pub struct TsqlEmulator {
    state: AppState,
    executed: Arc<Mutex<Vec<ExecutedBatch>>>,
}

impl std::fmt::Debug for TsqlEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsqlEmulator").finish_non_exhaustive()
    }
}

impl TsqlEmulator {
    pub(crate) fn new(state: AppState) -> Self {
        TsqlEmulator {
            state,
            executed: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Every batch executed through this emulator's connections, in order.
    pub fn executed(&self) -> Vec<ExecutedBatch> {
        self.executed.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Run one batch directly (what a connection's `execute` does).
    pub fn run(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlCell>>, SqlError> {
        if let Ok(mut e) = self.executed.lock() {
            e.push((sql.to_owned(), params.to_vec()));
        }
        let lag = self
            .state
            .faults
            .lock()
            .map(|f| f.search_lag_ms)
            .unwrap_or(0);
        let st = self
            .state
            .store
            .lock()
            .map_err(|_| SqlError::new(50000, "store lock poisoned"))?;
        run_batch(&st, sql, params, lag)
    }
}

/// One emulated connection.
#[derive(Debug)]
pub struct TsqlConnection(TsqlEmulator);

impl SqlConnect for TsqlEmulator {
    type Session = TsqlConnection;

    async fn connect(&self) -> Result<TsqlConnection, ErpError> {
        Ok(TsqlConnection(self.clone()))
    }
}

impl SqlSession for TsqlConnection {
    async fn execute(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        after_call: bool,
    ) -> Result<Vec<Vec<SqlCell>>, ErpError> {
        self.0.run(sql, params).map_err(|e| {
            if e.number == 50000 {
                ErpError::Retryable {
                    erp: ERP,
                    status: None,
                    message: e.to_string(),
                    retry_after: None,
                    may_have_committed: after_call,
                }
            } else {
                ErpError::Permanent {
                    erp: ERP,
                    status: None,
                    message: format!("SQL Server error {}: {}", e.number, e.message),
                }
            }
        })
    }
}

fn syntax(msg: impl std::fmt::Display) -> SqlError {
    SqlError::new(102, format!("Incorrect syntax: {msg}"))
}

fn not_emulated(what: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        50000,
        format!("The Sage 500 emulation does not run: {what}"),
    )
}

fn unquote(name: &str) -> String {
    name.trim_matches(|c| c == '[' || c == ']' || c == '"')
        .to_owned()
}

type Vars = HashMap<String, SqlCell>;

/// Run the statements of one batch; answer the rows of its last result set.
pub fn run_batch(
    st: &Store,
    sql: &str,
    params: &[SqlValue],
    lag: u64,
) -> Result<Vec<Vec<SqlCell>>, SqlError> {
    let dialect = MsSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize().map_err(syntax)?;
    let mut vars: Vars = params
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let cell = match v {
                SqlValue::Text(s) | SqlValue::Decimal(s) => SqlCell::Text(s.clone()),
                SqlValue::Int(i) => SqlCell::Int(*i),
                SqlValue::Null => SqlCell::Null,
            };
            (format!("@p{}", i + 1), cell)
        })
        .collect();
    let mut statements: Vec<Vec<Token>> = vec![Vec::new()];
    for t in tokens {
        match t {
            Token::SemiColon => statements.push(Vec::new()),
            Token::Whitespace(_) => {}
            t => {
                if let Some(s) = statements.last_mut() {
                    s.push(t);
                }
            }
        }
    }
    let mut last = Vec::new();
    for s in statements.into_iter().filter(|s| !s.is_empty()) {
        let first = match &s[0] {
            Token::Word(w) => w.value.to_ascii_uppercase(),
            other => return Err(syntax(format!("near '{other}'"))),
        };
        match first.as_str() {
            "EXEC" | "EXECUTE" => exec(st, &s[1..], &mut vars, lag)?,
            "SET" => set(&s[1..], &mut vars)?,
            _ => {
                let stmt = Parser::new(&dialect)
                    .with_tokens(s)
                    .parse_statement()
                    .map_err(syntax)?;
                if let Some(rows) = statement(st, &stmt, &mut vars)? {
                    last = rows;
                }
            }
        }
    }
    Ok(last)
}

fn var_name(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.value.starts_with('@') && w.quote_style.is_none() => {
            Some(w.value.to_ascii_lowercase())
        }
        _ => None,
    }
}

fn variable(vars: &Vars, name: &str) -> Result<SqlCell, SqlError> {
    vars.get(&name.to_ascii_lowercase())
        .cloned()
        .ok_or_else(|| SqlError::new(137, format!("Must declare the scalar variable \"{name}\".")))
}

/// A constant or variable token.
fn atom(t: &Token, vars: &Vars) -> Result<SqlCell, SqlError> {
    match t {
        Token::Number(n, _) => Ok(n
            .parse::<i64>()
            .map(SqlCell::Int)
            .unwrap_or_else(|_| SqlCell::Text(n.clone()))),
        Token::SingleQuotedString(s) | Token::NationalStringLiteral(s) => {
            Ok(SqlCell::Text(s.clone()))
        }
        Token::Word(w) if w.value.eq_ignore_ascii_case("NULL") && w.quote_style.is_none() => {
            Ok(SqlCell::Null)
        }
        t => match var_name(t) {
            Some(v) => variable(vars, &v),
            None => Err(syntax(format!("near '{t}'"))),
        },
    }
}

/// `SET @v = <constant or variable>`.
fn set(tokens: &[Token], vars: &mut Vars) -> Result<(), SqlError> {
    match tokens {
        [name, Token::Eq, value] => {
            let n = var_name(name).ok_or_else(|| syntax(format!("near '{name}'")))?;
            variable(vars, &n)?;
            let v = atom(value, vars)?;
            vars.insert(n, v);
            Ok(())
        }
        _ => Err(not_emulated("SET other than `SET @variable = value`")),
    }
}

/// One argument of `EXEC`: its value, the variable it names, whether OUTPUT was asked.
struct Arg {
    value: SqlCell,
    variable: Option<String>,
    output: bool,
}

/// Parameter names of the 11-parameter migration interface and which are OUTPUT (TYL).
const API_PARAMS: [(&str, bool); 11] = [
    ("@oContinue", true),
    ("@iCancel", false),
    ("@iSessionKey", false),
    ("@iCompanyID", false),
    ("@iRptOption", false),
    ("@iPrintWarnings", false),
    ("@iUseStageTable", false),
    ("@oRecsProcessed", true),
    ("@oFailedRecs", true),
    ("@oTotalRecs", true),
    ("@_oRetVal", true),
];

fn exec(st: &Store, tokens: &[Token], vars: &mut Vars, lag: u64) -> Result<(), SqlError> {
    let Some(Token::Word(name)) = tokens.first() else {
        return Err(syntax("EXEC without a procedure name"));
    };
    if name.value.starts_with('@') {
        return Err(not_emulated("EXEC @return = procedure"));
    }
    let procedure = name.value.clone();
    let mut args: Vec<Arg> = Vec::new();
    let mut rest = &tokens[1..];
    while !rest.is_empty() {
        if let [Token::Word(_), Token::Eq, ..] = rest {
            return Err(not_emulated("named procedure arguments"));
        }
        let value = atom(&rest[0], vars)?;
        let variable = var_name(&rest[0]);
        rest = &rest[1..];
        let output = match rest.first() {
            Some(Token::Word(w))
                if w.value.eq_ignore_ascii_case("OUTPUT")
                    || w.value.eq_ignore_ascii_case("OUT") =>
            {
                rest = &rest[1..];
                true
            }
            _ => false,
        };
        if output && variable.is_none() {
            return Err(syntax("OUTPUT needs a variable"));
        }
        args.push(Arg {
            value,
            variable,
            output,
        });
        match rest.first() {
            None => {}
            Some(Token::Comma) => rest = &rest[1..],
            Some(t) => return Err(syntax(format!("near '{t}'"))),
        }
    }
    if procedure.eq_ignore_ascii_case("spGetNextSurrogateKey") {
        return surrogate_key(st, &args, vars);
    }
    api_call(st, &procedure, &args, vars, lag)
}

/// `EXEC spGetNextSurrogateKey @iTableName, @oSurrogateKey OUTPUT` (EBS, QDT).
fn surrogate_key(st: &Store, args: &[Arg], vars: &mut Vars) -> Result<(), SqlError> {
    let [table, key] = args else {
        return Err(SqlError::new(
            8144,
            "Procedure or function spGetNextSurrogateKey has too many arguments specified.",
        ));
    };
    if table.value != SqlCell::Text("tsmMigrateSession".into()) {
        return Err(not_emulated(format!(
            "spGetNextSurrogateKey for {:?}",
            table.value
        )));
    }
    let (Some(v), true) = (&key.variable, key.output) else {
        return Err(syntax(
            "spGetNextSurrogateKey answers through an OUTPUT variable",
        ));
    };
    let k = sage500::next_session_key(st)?;
    vars.insert(v.clone(), SqlCell::Int(k));
    Ok(())
}

fn api_call(
    st: &Store,
    procedure: &str,
    args: &[Arg],
    vars: &mut Vars,
    lag: u64,
) -> Result<(), SqlError> {
    if args.len() > API_PARAMS.len() {
        return Err(SqlError::new(
            8144,
            format!("Procedure or function {procedure} has too many arguments specified."),
        ));
    }
    if let Some((missing, _)) = API_PARAMS.get(args.len()) {
        return Err(SqlError::new(
            201,
            format!(
                "Procedure or function '{procedure}' expects parameter '{missing}', which was not supplied."
            ),
        ));
    }
    for (a, (name, is_output)) in args.iter().zip(API_PARAMS) {
        if a.output && !is_output {
            return Err(SqlError::new(
                8162,
                format!(
                    "The formal parameter \"{name}\" was not declared as an OUTPUT parameter, but the actual parameter passed in requested output."
                ),
            ));
        }
    }
    let int = |i: usize| args[i].value.as_i64().unwrap_or(0);
    let company = match &args[3].value {
        SqlCell::Text(s) => s.trim().to_owned(),
        _ => String::new(),
    };
    // @iCompanyID is varchar(3): SQL Server truncates a longer argument silently.
    let company: String = company.chars().take(3).collect();
    let out = sage500::call(
        st,
        procedure,
        &CallArgs {
            cancel: int(1),
            session: int(2),
            company,
            rpt_option: int(4),
            print_warnings: int(5),
            use_stage_table: int(6),
            recs: int(7),
            failed: int(8),
            total: int(9),
        },
        lag,
    )?;
    for (i, v) in [
        (0, out.cont),
        (7, out.recs),
        (8, out.failed),
        (9, out.total),
        (10, out.ret_val),
    ] {
        if let (true, Some(name)) = (args[i].output, &args[i].variable) {
            vars.insert(name.clone(), SqlCell::Int(v));
        }
    }
    Ok(())
}

fn eval(e: &Expr, vars: &Vars) -> Result<SqlCell, SqlError> {
    match e {
        Expr::Identifier(i) if i.value.starts_with('@') => variable(vars, &i.value),
        Expr::Value(v) => {
            use sqlparser::ast::Value as V;
            match &v.value {
                V::Number(n, _) => Ok(n
                    .parse::<i64>()
                    .map(SqlCell::Int)
                    .unwrap_or_else(|_| SqlCell::Text(n.clone()))),
                V::SingleQuotedString(s) | V::NationalStringLiteral(s) => {
                    Ok(SqlCell::Text(s.clone()))
                }
                V::Null => Ok(SqlCell::Null),
                other => Err(not_emulated(format!("the literal {other}"))),
            }
        }
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("GETDATE") => {
            Ok(SqlCell::Text("GETDATE()".into()))
        }
        Expr::Cast { expr, .. } | Expr::Nested(expr) => eval(expr, vars),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match eval(expr, vars)? {
            SqlCell::Int(i) => Ok(SqlCell::Int(-i)),
            other => Err(not_emulated(format!("-{other:?}"))),
        },
        other => Err(not_emulated(format!("the expression {other}"))),
    }
}

/// A column reference (through `CAST`).
fn column(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) if !i.value.starts_with('@') => Some(i.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => column(expr),
        _ => None,
    }
}

/// `a = x AND b = y …` as `(column, value)` pairs.
fn equalities(e: &Expr, vars: &Vars, out: &mut Vec<(String, SqlCell)>) -> Result<(), SqlError> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            equalities(left, vars, out)?;
            equalities(right, vars, out)
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let c = column(left).ok_or_else(|| not_emulated(format!("the condition {e}")))?;
            out.push((c, eval(right, vars)?));
            Ok(())
        }
        other => Err(not_emulated(format!("the condition {other}"))),
    }
}

fn cell_json(c: &SqlCell) -> Value {
    match c {
        SqlCell::Int(i) => Value::from(*i),
        SqlCell::Text(s) => Value::from(s.clone()),
        SqlCell::Null => Value::Null,
    }
}

fn json_cell(v: Option<&Value>) -> SqlCell {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .map(SqlCell::Int)
            .unwrap_or_else(|| SqlCell::Text(n.to_string())),
        Some(Value::String(s)) => SqlCell::Text(s.clone()),
        Some(Value::Bool(b)) => SqlCell::Int(i64::from(*b)),
        _ => SqlCell::Null,
    }
}

const SESSION_COLUMNS: [&str; 8] = [
    "MigrateSessionKey",
    "CompanyID",
    "LastCompProcessMode",
    "LastCompProcessNo",
    "LastCompProcessTime",
    "SetupStepKey",
    "StartTime",
    "UserID",
];

const COMPANY_SETUP_COLUMNS: [&str; 4] = [
    "CompanyID",
    "MigrateSourceSystem",
    "MigrateLinkKey",
    "MigrateSourceVersionNo",
];

fn statement(
    st: &Store,
    stmt: &Statement,
    vars: &mut Vars,
) -> Result<Option<Vec<Vec<SqlCell>>>, SqlError> {
    match stmt {
        Statement::Declare { stmts, .. } => {
            for d in stmts {
                for n in &d.names {
                    vars.insert(n.value.to_ascii_lowercase(), SqlCell::Null);
                }
            }
            Ok(None)
        }
        Statement::Insert(ins) => {
            let TableObject::TableName(name) = &ins.table else {
                return Err(not_emulated("INSERT INTO a table function"));
            };
            let table = unquote(&name.to_string());
            let columns: Vec<String> = ins
                .columns
                .iter()
                .map(|c| unquote(&c.to_string()))
                .collect();
            let check_columns = |known: &[&str]| {
                columns
                    .iter()
                    .find(|c| !known.iter().any(|k| k.eq_ignore_ascii_case(c)))
                    .map_or(Ok(()), |c| {
                        Err(SqlError::new(207, format!("Invalid column name '{c}'.")))
                    })
            };
            let source = ins
                .source
                .as_ref()
                .ok_or_else(|| not_emulated("INSERT without values"))?;
            if table.eq_ignore_ascii_case("tsmCompanySetup") {
                // INSERT … SELECT … WHERE NOT EXISTS: the emulated install has every company.
                check_columns(&COMPANY_SETUP_COLUMNS)?;
                return Ok(None);
            }
            let SetExpr::Values(values) = source.body.as_ref() else {
                return Err(not_emulated(format!("INSERT INTO {table} … SELECT")));
            };
            let [row] = values.rows.as_slice() else {
                return Err(not_emulated("INSERT of several rows at once"));
            };
            if row.content.len() != columns.len() {
                return Err(SqlError::new(
                    109,
                    "There are more columns in the INSERT statement than values specified in the VALUES clause.",
                ));
            }
            let mut cols = Map::new();
            for (c, e) in columns.iter().zip(&row.content) {
                cols.insert(c.clone(), cell_json(&eval(e, vars)?));
            }
            if table.eq_ignore_ascii_case("tdiDataTrnsfrJobExecute") {
                check_columns(&["DataTrnsfrJobDefKey", "SessionKey"])?;
                let job = cols.get("DataTrnsfrJobDefKey").and_then(Value::as_i64);
                let session = cols.get("SessionKey").and_then(Value::as_i64);
                let (Some(job), Some(session)) = (job, session) else {
                    return Err(SqlError::new(
                        515,
                        "Cannot insert the value NULL into table 'tdiDataTrnsfrJobExecute'.",
                    ));
                };
                sage500::tie_dim_job(st, session, job)?;
                return Ok(None);
            }
            if table.eq_ignore_ascii_case("tsmMigrateSession") {
                check_columns(&SESSION_COLUMNS)?;
                let key = cols.get("MigrateSessionKey").and_then(Value::as_i64);
                let company = cols.get("CompanyID").and_then(Value::as_str);
                let (Some(key), Some(company)) = (key, company) else {
                    return Err(SqlError::new(
                        515,
                        "Cannot insert the value NULL into column 'MigrateSessionKey' or 'CompanyID', table 'tsmMigrateSession'.",
                    ));
                };
                let user = cols.get("UserID").and_then(Value::as_str).unwrap_or("");
                sage500::register_session(
                    st,
                    key,
                    company,
                    cols.get("SetupStepKey").and_then(Value::as_i64),
                    user,
                )?;
                return Ok(None);
            }
            let session = cols.remove("SessionKey").and_then(|v| v.as_i64());
            let status = cols.remove("ProcessStatus").and_then(|v| v.as_i64());
            let (Some(session), Some(0)) = (session, status) else {
                return Err(SqlError::new(
                    515,
                    format!("Cannot insert the value NULL into column 'SessionKey'/'ProcessStatus' (0), table '{table}'."),
                ));
            };
            // A NULL is an absent column.
            cols.retain(|_, v| !v.is_null());
            sage500::stage(st, session, &table, &cols)?;
            Ok(None)
        }
        Statement::Query(q) => {
            let SetExpr::Select(sel) = q.body.as_ref() else {
                return Err(not_emulated(format!("the query {q}")));
            };
            let exprs: Vec<&Expr> = sel
                .projection
                .iter()
                .map(|p| match p {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Ok(e),
                    other => Err(not_emulated(format!("the projection {other}"))),
                })
                .collect::<Result<_, _>>()?;
            if sel.from.is_empty() {
                let row = exprs
                    .iter()
                    .map(|e| eval(e, vars))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Some(vec![row]));
            }
            let [from] = sel.from.as_slice() else {
                return Err(not_emulated("a query over several tables"));
            };
            if !from.joins.is_empty() {
                return Err(not_emulated("a join"));
            }
            let TableFactor::Table { name, .. } = &from.relation else {
                return Err(not_emulated("a derived table"));
            };
            let table = unquote(&name.to_string());
            let mut conds = Vec::new();
            if let Some(w) = &sel.selection {
                equalities(w, vars, &mut conds)?;
            }
            let cols: Vec<String> = exprs
                .iter()
                .map(|e| column(e).ok_or_else(|| not_emulated(format!("the projection {e}"))))
                .collect::<Result<_, _>>()?;
            let top = match &sel.top.as_ref().and_then(|t| t.quantity.as_ref()) {
                Some(sqlparser::ast::TopQuantity::Constant(n)) => *n as i64,
                _ => 1000,
            };
            select(st, &table, &cols, &conds, top).map(Some)
        }
        Statement::Update(u) => {
            let table = unquote(&u.table.relation.to_string());
            if !table.eq_ignore_ascii_case("tsmMigrateSession") {
                return Err(not_emulated(format!("UPDATE {table}")));
            }
            for a in &u.assignments {
                let c = unquote(&a.target.to_string());
                if !SESSION_COLUMNS.iter().any(|k| k.eq_ignore_ascii_case(&c)) {
                    return Err(SqlError::new(207, format!("Invalid column name '{c}'.")));
                }
                eval(&a.value, vars)?;
            }
            let mut conds = Vec::new();
            if let Some(w) = &u.selection {
                equalities(w, vars, &mut conds)?;
            }
            match conds.as_slice() {
                [(c, key)] if c.eq_ignore_ascii_case("MigrateSessionKey") => {
                    let rows = select(
                        st,
                        "tsmMigrateSession",
                        &["MigrateSessionKey".into()],
                        &[(c.clone(), key.clone())],
                        1,
                    )?;
                    if rows.is_empty() {
                        return Err(not_emulated("closing a session that was never registered"));
                    }
                    Ok(None)
                }
                _ => Err(not_emulated("UPDATE tsmMigrateSession other than by key")),
            }
        }
        other => Err(not_emulated(format!("the statement {other}"))),
    }
}

fn cond<'a>(conds: &'a [(String, SqlCell)], name: &str) -> Option<&'a SqlCell> {
    conds
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn select(
    st: &Store,
    table: &str,
    cols: &[String],
    conds: &[(String, SqlCell)],
    top: i64,
) -> Result<Vec<Vec<SqlCell>>, SqlError> {
    let store = |e: crate::StoreError| SqlError::new(50000, e.to_string());
    let session_of = || {
        cond(conds, "SessionKey")
            .or_else(|| cond(conds, "MigrateSessionKey"))
            .and_then(SqlCell::as_i64)
            .ok_or_else(|| not_emulated(format!("reading {table} other than by session")))
    };
    let project = |row: &Map<String, Value>| -> Vec<SqlCell> {
        cols.iter()
            .map(|c| json_cell(row.get(c.as_str())))
            .collect()
    };
    if table.starts_with("Stg") || table == "tsmMigrateSession" {
        let session = session_of()?;
        return Ok(st
            .staging_rows_full(session)
            .map_err(store)?
            .into_iter()
            .filter(|(t, ..)| t.eq_ignore_ascii_case(table))
            .map(|(_, key, status, c)| {
                let mut row = c.as_object().cloned().unwrap_or_default();
                row.insert("RowKey".into(), Value::from(key));
                row.insert("ProcessStatus".into(), Value::from(status));
                row.insert("SessionKey".into(), Value::from(session));
                project(&row)
            })
            .take(usize::try_from(top).unwrap_or(usize::MAX))
            .collect());
    }
    if table.eq_ignore_ascii_case("tdmMigrationLogWrk") {
        let session = session_of()?;
        for c in cols {
            if !["Comment", "SessionKey"].contains(&c.as_str()) {
                return Err(SqlError::new(207, format!("Invalid column name '{c}'.")));
            }
        }
        return Ok(st
            .logs(session)
            .map_err(store)?
            .into_iter()
            .map(|m| {
                let mut row = Map::new();
                row.insert("Comment".into(), Value::from(m));
                row.insert("SessionKey".into(), Value::from(session));
                project(&row)
            })
            .collect());
    }
    if !table.starts_with('t') {
        return Err(SqlError::new(
            208,
            format!("Invalid object name '{table}'."),
        ));
    }
    let filters: Vec<(String, FilterValue)> = conds
        .iter()
        .map(|(c, v)| {
            let f = match v {
                SqlCell::Int(i) => FilterValue::Int(*i),
                SqlCell::Text(s) => FilterValue::Text(s.clone()),
                SqlCell::Null => FilterValue::Text(String::new()),
            };
            (c.clone(), f)
        })
        .collect();
    Ok(st
        .find(ERP, table, &filters, top)
        .map_err(store)?
        .iter()
        .filter_map(Value::as_object)
        .map(project)
        .collect())
}
