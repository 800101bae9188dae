//! Closed sets of values the domain decides by: a conversation's kind, a member's role, a report's
//! state, a push device's type. Stored and sent as the lower-case words the API documents (`"direct"`,
//! `"group"`; `"owner"`, `"admin"`, `"member"`; `"open"`, `"dismissed"`, `"actioned"`; `"webpush"`,
//! `"apns"`, `"fcm"`), compared as enums, so a misspelt role is a compile error rather than a check that is
//! never true. A leaf module: every layer may use it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a conversation is: two people for good, or a group that people join and leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    Direct,
    Group,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        }
    }
}

impl fmt::Display for ConversationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's standing in a conversation, lowest first: the derived order is the rank (an owner
/// outranks an admin, who outranks a member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Member,
    Admin,
    Owner,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Member => "member",
            MemberRole::Admin => "admin",
            MemberRole::Owner => "owner",
        }
    }

    /// Owners and admins: who may moderate a group.
    pub fn moderates(self) -> bool {
        self >= MemberRole::Admin
    }
}

impl fmt::Display for MemberRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemberRole {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "member" => Ok(MemberRole::Member),
            "admin" => Ok(MemberRole::Admin),
            "owner" => Ok(MemberRole::Owner),
            _ => Err(()),
        }
    }
}

/// Where a report stands: filed, then closed by a moderator one way or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Open,
    Dismissed,
    Actioned,
}

impl ReportStatus {
    pub const ALL: [ReportStatus; 3] = [ReportStatus::Open, ReportStatus::Dismissed, ReportStatus::Actioned];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::Dismissed => "dismissed",
            ReportStatus::Actioned => "actioned",
        }
    }
}

impl fmt::Display for ReportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReportStatus {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        ReportStatus::ALL.into_iter().find(|s| s.as_str() == text).ok_or(())
    }
}

/// How a device is reached: a browser's Web Push subscription, or an APNs or FCM token through SNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    WebPush,
    Apns,
    Fcm,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 3] = [DeviceKind::WebPush, DeviceKind::Apns, DeviceKind::Fcm];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::WebPush => "webpush",
            DeviceKind::Apns => "apns",
            DeviceKind::Fcm => "fcm",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceKind {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        DeviceKind::ALL.into_iter().find(|k| k.as_str() == text).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_roles_are_the_apis_words() {
        assert_eq!(serde_json::to_value(ConversationKind::Group).unwrap(), "group");
        assert_eq!(
            serde_json::from_value::<ConversationKind>("direct".into()).unwrap(),
            ConversationKind::Direct
        );
        for role in [MemberRole::Member, MemberRole::Admin, MemberRole::Owner] {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
            assert_eq!(role.as_str().parse::<MemberRole>(), Ok(role));
        }
        assert!("Owner".parse::<MemberRole>().is_err());
        assert!(serde_json::from_value::<MemberRole>("superuser".into()).is_err());
    }

    #[test]
    fn report_states_are_the_apis_words() {
        for status in ReportStatus::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(status.as_str().parse::<ReportStatus>(), Ok(status));
        }
        assert!("closed".parse::<ReportStatus>().is_err());
        for kind in DeviceKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(kind.as_str().parse::<DeviceKind>(), Ok(kind));
        }
        assert!("web-push".parse::<DeviceKind>().is_err());
    }

    #[test]
    fn roles_rank_owner_over_admin_over_member() {
        assert!(MemberRole::Owner > MemberRole::Admin && MemberRole::Admin > MemberRole::Member);
        assert!(MemberRole::Owner.moderates() && MemberRole::Admin.moderates());
        assert!(!MemberRole::Member.moderates());
    }
}
