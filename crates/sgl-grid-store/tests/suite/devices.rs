//! Device logins: pending, approved once, expired.

use sgl_grid_store::Store;
use sgl_grid_store::devices::{ApproveDeviceError, DeviceLoginState};

const NOW: i64 = 1_700_000_000_000;

pub(crate) async fn device_logins_are_approved_once_and_expire(store: &Store) {
    store.create_device_login("d1", "ABCD-EFGH", NOW, NOW + 600_000).await.unwrap();
    store.create_device_login("d2", "WXYZ-2345", NOW, NOW + 10).await.unwrap();
    assert!(store.create_device_login("d3", "ABCD-EFGH", NOW, NOW + 1).await.is_err(), "user codes are unique");
    assert_eq!(store.poll_device_login("d1", NOW).await.unwrap(), Some(DeviceLoginState::Pending));
    assert_eq!(store.poll_device_login("nope", NOW).await.unwrap(), None);
    store.approve_device_login("ABCD-EFGH", "0xw", "code-1", NOW + 1).await.unwrap();
    let again = store.approve_device_login("ABCD-EFGH", "0xevil", "code-2", NOW + 2).await;
    assert!(matches!(again, Err(ApproveDeviceError::AlreadyApproved)));
    let approved = store.poll_device_login("d1", NOW + 3).await.unwrap();
    assert_eq!(approved, Some(DeviceLoginState::Approved { wallet: "0xw".into(), registration_code: "code-1".into() }));
    assert!(matches!(
        store.approve_device_login("WXYZ-2345", "0xw", "c", NOW + 10).await,
        Err(ApproveDeviceError::Expired)
    ));
    assert!(matches!(store.approve_device_login("NOPE-NOPE", "0xw", "c", NOW).await, Err(ApproveDeviceError::Unknown)));
    assert_eq!(store.poll_device_login("d2", NOW + 10).await.unwrap(), Some(DeviceLoginState::Expired));
    assert_eq!(store.poll_device_login("d1", NOW + 600_000).await.unwrap(), Some(DeviceLoginState::Expired));
}
