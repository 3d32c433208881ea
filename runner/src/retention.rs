//! Retention: which backups `hookrun prune` keeps. Rules combine with OR, time is measured from the newest backup
//! (not from now, so an idle deployment does not lose its history), and the newest verified backup is always kept.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The rules; `None` means the rule keeps nothing by itself.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Keep the N newest usable backups.
    pub keep_last: Option<usize>,
    /// Keep every backup made within this long of the newest backup.
    pub keep_within: Option<Duration>,
    /// Keep the N newest usable pre-upgrade backups.
    pub keep_pre_upgrade: Option<usize>,
}

/// What retention needs to know of a backup.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub pre_upgrade: bool,
    /// Completed (usable).
    pub usable: bool,
    /// Verified, and the last verification passed.
    pub verified: bool,
}

/// The ids to delete: everything no rule keeps.
pub fn to_delete(candidates: &[Candidate], rules: &Rules) -> Vec<i64> {
    let kept = kept(candidates, rules);
    let mut delete: Vec<i64> = candidates
        .iter()
        .map(|c| c.id)
        .filter(|id| !kept.contains_key(id))
        .collect();
    delete.sort_unstable();
    delete
}

/// Every backup a rule keeps, with the rules that keep it, in words (`keep-last 2`, `the newest verified backup`).
pub fn kept(candidates: &[Candidate], rules: &Rules) -> BTreeMap<i64, Vec<String>> {
    let mut newest_first: Vec<&Candidate> = candidates.iter().collect();
    newest_first.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let mut keep: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut because = |id: i64, why: String| keep.entry(id).or_default().push(why);
    if let Some(n) = rules.keep_last {
        for c in newest_first.iter().filter(|c| c.usable).take(n) {
            because(c.id, format!("--keep-last {n}"));
        }
    }
    if let Some(n) = rules.keep_pre_upgrade {
        for c in newest_first.iter().filter(|c| c.usable && c.pre_upgrade).take(n) {
            because(c.id, format!("--keep-pre-upgrade {n}"));
        }
    }
    if let (Some(window), Some(newest)) = (rules.keep_within, newest_first.first()) {
        let chrono_window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let since = newest
            .created_at
            .checked_sub_signed(chrono_window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        for c in newest_first.iter().filter(|c| c.created_at >= since) {
            because(
                c.id,
                format!(
                    "--keep-within {} (of the newest backup)",
                    humantime::format_duration(window)
                ),
            );
        }
    }
    if let Some(newest_verified) = newest_first.iter().find(|c| c.usable && c.verified) {
        because(
            newest_verified.id,
            "the newest verified backup, which is always kept".to_string(),
        );
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Backups 1..=n, one a day; `pre` are pre-upgrade, `verified` verified, `failed` unusable.
    fn history(n: i64, pre: &[i64], verified: &[i64], failed: &[i64]) -> Vec<Candidate> {
        (1..=n)
            .map(|id| Candidate {
                id,
                created_at: Utc.with_ymd_and_hms(2026, 1, id as u32, 12, 0, 0).unwrap(),
                pre_upgrade: pre.contains(&id),
                usable: !failed.contains(&id),
                verified: verified.contains(&id),
            })
            .collect()
    }

    fn rules(keep_last: Option<usize>, within_days: Option<u64>, keep_pre: Option<usize>) -> Rules {
        Rules {
            keep_last,
            keep_within: within_days.map(|d| Duration::from_secs(d * 86_400)),
            keep_pre_upgrade: keep_pre,
        }
    }

    #[test]
    fn keep_last_keeps_the_newest_usable_backups() {
        let backups = history(6, &[], &[], &[6]);
        assert_eq!(to_delete(&backups, &rules(Some(2), None, None)), [1, 2, 3, 6]);
    }

    #[test]
    fn keep_within_is_measured_from_the_newest_backup_not_from_now() {
        // The newest backup is months old; "within 2 days" still keeps days 4, 5 and 6.
        let backups = history(6, &[], &[], &[]);
        assert_eq!(to_delete(&backups, &rules(None, Some(2), None)), [1, 2, 3]);
    }

    #[test]
    fn keep_pre_upgrade_keeps_the_newest_pre_upgrade_backups() {
        let backups = history(6, &[1, 3, 4], &[], &[]);
        assert_eq!(to_delete(&backups, &rules(None, None, Some(2))), [1, 2, 5, 6]);
    }

    #[test]
    fn rules_combine_with_or() {
        let backups = history(8, &[2], &[], &[]);
        assert_eq!(to_delete(&backups, &rules(Some(1), Some(1), Some(1))), [1, 3, 4, 5, 6]);
    }

    #[test]
    fn each_kept_backup_says_which_rules_keep_it() {
        let backups = history(4, &[1], &[2], &[]);
        let kept = kept(&backups, &rules(Some(1), None, Some(1)));
        assert_eq!(
            kept,
            BTreeMap::from([
                (1, vec!["--keep-pre-upgrade 1".to_string()]),
                (2, vec!["the newest verified backup, which is always kept".to_string()]),
                (4, vec!["--keep-last 1".to_string()]),
            ])
        );
    }

    #[test]
    fn the_newest_verified_backup_is_never_deleted() {
        let backups = history(5, &[], &[2], &[]);
        assert_eq!(to_delete(&backups, &rules(Some(1), None, None)), [1, 3, 4]);
        assert_eq!(to_delete(&backups, &Rules::default()), [1, 3, 4, 5]);
    }
}
