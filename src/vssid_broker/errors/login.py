"""What a person is told when a sign-in cannot go on: every refusal of a VNeID login, of the
password sign-in and of the proof by password, one class per stable code.

Codes are part of the API (the app branches on them); messages are what the person reads.
A refusal writes one audit event (`audit_event`, outcome = the code) and nothing else.
"""

from __future__ import annotations

from typing import Any

from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors import Conflict, DomainError, Forbidden, Unauthorized
from vssid_broker.passwords import ACCOUNT_MIN_PASSWORD_LENGTH

ACCOUNT_NOT_ACTIVE_MESSAGE = (
    "Tài khoản VssID của bạn đang bị khoá hoặc đã đóng. Vui lòng liên hệ cơ quan BHXH để được "
    "hỗ trợ."
)


class LoginRefused(DomainError):
    """A VNeID login cannot go on; nothing was linked and no token was issued."""

    status = 400
    code = "login_refused"
    message = "Không thể đăng nhập bằng tài khoản định danh điện tử. Vui lòng thử lại."
    audit_event = AuditEventType.LOGIN


# --- the login transaction and the callback ---------------------------------------------------
class LoginStateInvalid(LoginRefused):
    code = "login_state_invalid"
    message = (
        "Phiên đăng nhập không hợp lệ hoặc đã hết hạn. Vui lòng bắt đầu đăng nhập lại "
        "từ trang VssID."
    )


class LoginNotFromThisBrowser(LoginRefused):
    code = "login_browser_mismatch"
    message = (
        "Yêu cầu đăng nhập không xuất phát từ trình duyệt này. Vì an toàn, vui lòng bắt đầu "
        "đăng nhập lại."
    )


class AppRequestInvalid(LoginRefused):
    code = "invalid_request"
    message = "Yêu cầu từ ứng dụng không hợp lệ."


class AppRedirectUriInvalid(AppRequestInvalid):
    code = "invalid_redirect_uri"


class AppVerifierMismatch(LoginRefused):
    code = "invalid_grant"
    message = "Mã xác minh của ứng dụng không khớp. Vui lòng đăng nhập lại."


# --- VNeID's answers ---------------------------------------------------------------------------
class ProviderIssuerMismatch(LoginRefused):
    code = "vneid_issuer_mismatch"
    message = "Phản hồi không đến từ VNeID. Vì an toàn, đăng nhập đã bị từ chối."


class ProviderDenied(LoginRefused):
    code = "vneid_access_denied"
    # Not "you cancelled": VNeID answers access_denied to a locked account too.
    message = (
        "VNeID không chuyển kết quả đăng nhập về VssID: việc đăng nhập hoặc chia sẻ thông tin "
        "đã bị huỷ tại VNeID, hoặc tài khoản định danh điện tử không thể đăng nhập lúc này "
        "(ví dụ đang bị khoá)."
    )


class ProviderError(LoginRefused):
    code = "vneid_error"
    message = "VNeID báo lỗi khi xác thực. Vui lòng thử lại sau ít phút."


class ProviderUnavailable(LoginRefused):
    status = 503
    code = "vneid_unavailable"
    message = "Hệ thống định danh điện tử VNeID đang tạm thời không phản hồi. Vui lòng thử lại sau."


class ProviderMisconfigured(ProviderUnavailable):
    """Discovery names another issuer, lacks fields or uses http: not an outage that passes by
    itself but a configuration to fix, so the person is told so (and operators read the detail
    in the log)."""

    status = 502
    code = "vneid_metadata_invalid"
    message = (
        "Kết nối giữa VssID và VNeID đang bị cấu hình sai nên chưa thể đăng nhập bằng tài khoản "
        "định danh điện tử. Vui lòng đăng nhập bằng cách khác hoặc liên hệ tổng đài 1900 9068."
    )


class ProviderRefusedRequest(LoginRefused):
    """VNeID refused a request the broker made (a PAR request): a configuration problem."""

    status = 502
    code = "vneid_request_refused"
    message = "VNeID không chấp nhận yêu cầu đăng nhập. Vui lòng thử lại sau hoặc liên hệ hỗ trợ."


class CodeExchangeFailed(LoginRefused):
    code = "vneid_code_exchange_failed"
    message = "Không xác nhận được kết quả đăng nhập với VNeID. Vui lòng đăng nhập lại."


class IdTokenRejected(LoginRefused):
    """The ID token (or userinfo) failed a check of OpenID Connect Core; `code` names which.

    The codes are a closed list, each naming the rule it enforces, so an auditor can see which
    rule fired and a test can prove each one."""

    code = "id_token_invalid"
    message = "Thông tin xác thực từ VNeID không hợp lệ. Vì an toàn, đăng nhập đã bị từ chối."
    CODES = frozenset(
        {
            "id_token_malformed",  # §3.1.3.7 rules 6-7: not a compact JWS
            "id_token_alg_not_allowed",  # rule 7: alg pinned by configuration and discovery
            "id_token_key_unknown",  # rule 6: no JWKS key for its kid and alg
            "id_token_signature_invalid",  # rule 6
            "id_token_issuer_mismatch",  # rule 2
            "id_token_audience_mismatch",  # rule 3
            "id_token_azp_mismatch",  # rules 4-5
            "id_token_expired",  # rule 9
            "id_token_iat_invalid",  # rule 10
            "id_token_nonce_mismatch",  # rule 11
            "id_token_subject_missing",  # §2: sub is required
            "id_token_auth_time_missing",  # rule 13
            "id_token_auth_too_old",  # rule 13
            "userinfo_subject_mismatch",  # §5.3.4: userinfo about another subject
        }
    )

    def __init__(self, detail: str, *, code: str, **kwargs: Any) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown ID-token refusal code {code!r}")
        super().__init__(detail, **kwargs)
        self.code = code


class AssuranceTooLow(LoginRefused):
    status = 403
    code = "vneid_level_insufficient"
    message = (
        "Tài khoản định danh điện tử của bạn chưa đạt mức độ 2. Để đăng nhập VssID, vui lòng "
        "kích hoạt tài khoản định danh điện tử mức độ 2 tại cơ quan Công an gần nhất."
    )


class ClaimsIncomplete(LoginRefused):
    code = "vneid_claims_incomplete"
    message = (
        "VNeID không cung cấp đủ thông tin định danh (số định danh cá nhân, họ tên, ngày sinh)."
    )


class AssuranceLevelMissing(LoginRefused):
    """Dialect: userinfo carries no level claim, so level 2 cannot be known: refused."""

    status = 403
    code = "vneid_level_missing"
    message = (
        "VNeID không cho biết mức độ của tài khoản định danh điện tử nên chưa thể xác nhận "
        "tài khoản đạt mức độ 2. Vui lòng thử lại sau hoặc đăng nhập bằng cách khác."
    )


# --- the dialect's encrypted answers (federation/vneid_dialect.py) ------------------------------
class DialectAnswerRefused(LoginRefused):
    """An answer of VNeID in its integration dialect could not be opened or read. A
    configuration or transport problem, not the person's: each reason has its own code."""

    status = 502
    code = "vneid_answer_invalid"
    message = (
        "Không đọc được kết quả đăng nhập VNeID gửi về (dữ liệu mã hoá không hợp lệ). Vì an "
        "toàn, đăng nhập đã bị từ chối. Vui lòng thử lại sau hoặc liên hệ tổng đài 1900 9068."
    )


class DialectKeyUnknown(DialectAnswerRefused):
    """No RSA key of `VSSID_VNEID_DECRYPTION_KEY_FILES` opens the answer's AES key."""

    code = "vneid_answer_key_unknown"


class DialectDataGarbled(DialectAnswerRefused):
    """`data` is not base64, not whole AES blocks, or its padding is wrong."""

    code = "vneid_answer_garbled"


class DialectAnswerNotJson(DialectAnswerRefused):
    """The answer (decrypted or plain) is not a JSON object."""

    code = "vneid_answer_not_json"


class DialectAnswerTooLarge(DialectAnswerRefused):
    code = "vneid_answer_too_large"


class DialectTokenAnswerIncomplete(DialectAnswerRefused):
    """The token answer has no access token to read userinfo with."""

    code = "vneid_token_answer_incomplete"


class DialectCodeUndecryptable(DialectAnswerRefused):
    """The callback's code came encrypted with `encrypt_key`, and did not decrypt."""

    code = "vneid_code_undecryptable"


# --- the linking rules' answers ---------------------------------------------------------------
class VssidAccountRequired(LoginRefused):
    status = 404
    code = "vssid_account_required"
    message = (
        "Chưa có tài khoản VssID gắn với số định danh cá nhân của bạn. Vui lòng đăng ký tài "
        "khoản giao dịch điện tử với cơ quan BHXH trên ứng dụng VssID hoặc tại cơ quan BHXH "
        "gần nhất, sau đó đăng nhập lại bằng tài khoản định danh điện tử."
    )


class LinkRefused(LoginRefused):
    status = 403
    code = "link_refused"
    message = (
        "Không thể tự động liên kết tài khoản định danh điện tử với tài khoản VssID. Vui lòng "
        "liên hệ tổng đài 1900 9068 hoặc cơ quan BHXH nơi bạn tham gia để được hỗ trợ."
    )


class LinkUnderReview(LoginRefused):
    """Linking rules 3 and 4: a review case is pending; no link, no tokens, no session.

    403 rather than 202: the login did not succeed and no credential is issued, and clients
    (the app, our own pages) treat every 2xx of the login endpoints as a signed-in person.
    The stable code tells the app to show this message instead of a generic failure."""

    status = 403
    code = "link_under_review"
    message = (
        "Thông tin định danh điện tử của bạn chưa thể tự động liên kết với tài khoản VssID. "
        "Yêu cầu liên kết đã được chuyển cho cán bộ BHXH kiểm tra; việc kiểm tra thường hoàn "
        "tất trong 1–2 ngày làm việc. Sau đó, vui lòng đăng nhập lại bằng tài khoản định danh "
        "điện tử để xem kết quả."
    )


class ReviewRejected(LoginRefused):
    """Staff reviewed the person's link case and refused it: logging in again with the same
    data does not reopen it; the person is told who decided and what to do."""

    status = 403
    code = "review_rejected"
    message = (
        "Cán bộ BHXH đã kiểm tra yêu cầu liên kết tài khoản định danh điện tử của bạn và chưa "
        "thể xác nhận hồ sơ VssID nào là của bạn. Vui lòng mang căn cước công dân đến cơ quan "
        "BHXH nơi bạn tham gia (hoặc gọi tổng đài 1900 9068) để được cập nhật hồ sơ; sau đó "
        "đăng nhập lại bằng tài khoản định danh điện tử."
    )


class AccountNotActive(LoginRefused):
    """The account is locked or closed: refused by every sign-in method and by the proof."""

    status = 403
    code = "account_not_active"
    message = ACCOUNT_NOT_ACTIVE_MESSAGE


# --- the password sign-in and the proof by password --------------------------------------------
class WrongPassword(Unauthorized):
    """Unknown identifier, no password, or a wrong one: one answer, so nothing is revealed."""

    code = "invalid_credentials"
    message = "Mã số BHXH/số định danh cá nhân hoặc mật khẩu không đúng."
    audit_event = AuditEventType.LOGIN_PASSWORD


class PasswordSignInLocked(DomainError):
    status = 429
    code = "password_sign_in_locked"
    message = (
        "Bạn đã nhập sai mật khẩu quá nhiều lần. Đăng nhập bằng mật khẩu tạm khoá; vui lòng thử "
        "lại sau ít phút, hoặc đăng nhập bằng tài khoản định danh điện tử."
    )
    audit_event = AuditEventType.LOGIN_PASSWORD


class WeakPassword(DomainError):
    status = 422
    code = "weak_password"
    message = f"Mật khẩu phải có ít nhất {ACCOUNT_MIN_PASSWORD_LENGTH} ký tự."


class ProofInvalid(DomainError):
    code = "proof_invalid"
    message = (
        "Phiên xác minh đã hết hạn hoặc đã được sử dụng. Vui lòng đăng nhập lại bằng tài khoản "
        "định danh điện tử."
    )


class ProofNotACandidate(Forbidden):
    code = "proof_not_a_candidate"
    message = "Tài khoản này không khớp với thông tin định danh điện tử của bạn."


class AccountAlreadyLinked(Conflict):
    code = "already_linked"
    message = "Tài khoản VssID này đã được liên kết."


# --- the signed-in person's own pages ----------------------------------------------------------


class CsrfRefused(Forbidden):
    code = "csrf_refused"
    message = (
        "Yêu cầu không đến từ trang VssID hoặc trang đã quá cũ. Vui lòng tải lại trang và thử lại."
    )
