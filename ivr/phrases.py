"""The product's own words to callers, in each supported language, and the default voices.

Flows may override the menu reprompts; these are what a caller hears when a flow says nothing,
and what an apology sounds like when something failed.
"""

from __future__ import annotations

DEFAULT_VOICES: dict[str, str] = {
    "en-US": "Google.en-US-Standard-C",
    "vi-VN": "Google.vi-VN-Standard-A",
    "ar-XA": "Google.ar-XA-Standard-A",
}

# A language whose voices' code no speech recogniser takes: ar-XA names Google's Arabic voices,
# while recognisers want a country (Twilio hands Gather's language on to them as it is).
DEFAULT_SPEECH_LANGUAGES: dict[str, str] = {"ar-XA": "ar-EG"}

PHRASES: dict[str, dict[str, str]] = {
    "no_input": {
        "en-US": "Sorry, I didn't hear anything.",
        "vi-VN": "Xin lỗi, chúng tôi không nghe thấy gì.",
        "ar-XA": "عذرًا، لم نسمع أي شيء.",
    },
    "invalid": {
        "en-US": "Sorry, that is not one of the choices.",
        "vi-VN": "Xin lỗi, lựa chọn đó không hợp lệ.",
        "ar-XA": "عذرًا، هذا ليس أحد الخيارات.",
    },
    "apology": {
        "en-US": "We are sorry, we are having a technical problem.",
        "vi-VN": "Chúng tôi xin lỗi, hệ thống đang gặp sự cố kỹ thuật.",
        "ar-XA": "نعتذر، نواجه مشكلة فنية.",
    },
    "call_back_later": {
        "en-US": "Please call again later. Goodbye.",
        "vi-VN": "Vui lòng gọi lại sau. Xin chào tạm biệt.",
        "ar-XA": "يرجى الاتصال لاحقًا. مع السلامة.",
    },
    "connecting": {
        "en-US": "Connecting you to an agent.",
        "vi-VN": "Đang kết nối quý khách với nhân viên hỗ trợ.",
        "ar-XA": "جارٍ تحويلك إلى أحد الموظفين.",
    },
    "still_trying": {
        "en-US": "Please hold, we are still trying to reach an agent.",
        "vi-VN": "Xin vui lòng giữ máy, chúng tôi đang tiếp tục kết nối.",
        "ar-XA": "يرجى الانتظار، ما زلنا نحاول الوصول إلى أحد الموظفين.",
    },
    "all_busy": {
        "en-US": "All our agents are busy at the moment.",
        "vi-VN": "Hiện tất cả nhân viên đều đang bận.",
        "ar-XA": "جميع موظفينا مشغولون في الوقت الحالي.",
    },
    "hold_position": {
        "en-US": "You are number {position} in line.",
        "vi-VN": "Quý khách đang ở vị trí số {position} trong hàng chờ.",
        "ar-XA": "ترتيبك في قائمة الانتظار هو {position}.",
    },
    "hold_wait": {
        "en-US": "The expected wait is about {minutes} minutes.",
        "vi-VN": "Thời gian chờ dự kiến khoảng {minutes} phút.",
        "ar-XA": "مدة الانتظار المتوقعة حوالي {minutes} دقائق.",
    },
    "hold_leave": {
        "en-US": "To leave a message instead, press {key}.",
        "vi-VN": "Để để lại lời nhắn thay vì chờ, xin nhấn phím {key}.",
        "ar-XA": "لترك رسالة بدلًا من الانتظار، اضغط {key}.",
    },
    "key_star": {"en-US": "star", "vi-VN": "sao", "ar-XA": "النجمة"},
    "key_hash": {"en-US": "pound", "vi-VN": "thăng", "ar-XA": "المربع"},
    "queue_empty": {
        "en-US": "No callers are waiting. Goodbye.",
        "vi-VN": "Hiện không có khách hàng nào đang chờ. Tạm biệt.",
        "ar-XA": "لا يوجد متصلون في الانتظار. مع السلامة.",
    },
    "leave_message": {
        "en-US": "Please leave a message after the tone.",
        "vi-VN": "Vui lòng để lại lời nhắn sau tiếng bíp.",
        "ar-XA": "يرجى ترك رسالة بعد سماع الصفارة.",
    },
    "message_saved": {
        "en-US": "Thank you, your message has been recorded. Goodbye.",
        "vi-VN": "Cảm ơn quý khách, lời nhắn đã được ghi lại. Tạm biệt.",
        "ar-XA": "شكرًا لك، تم تسجيل رسالتك. مع السلامة.",
    },
    "message_again": {
        "en-US": "We did not hear a message. Please try again after the tone.",
        "vi-VN": "Chúng tôi chưa nghe thấy lời nhắn. Vui lòng thử lại sau tiếng bíp.",
        "ar-XA": "لم نسمع أي رسالة. يرجى المحاولة مرة أخرى بعد سماع الصفارة.",
    },
    "no_message": {
        "en-US": "We did not receive a message. Goodbye.",
        "vi-VN": "Chúng tôi không nhận được lời nhắn nào. Tạm biệt.",
        "ar-XA": "لم نتلق أي رسالة. مع السلامة.",
    },
}

FALLBACK_LANGUAGE = "en-US"


def has_words_for(language: str) -> bool:
    """Whether the built-in phrases are written in `language`, or in another form of it."""
    base = language.split("-")[0]
    return any(code.split("-")[0] == base for code in PHRASES["apology"])


def phrase(key: str, language: str) -> tuple[str, str]:
    """The built-in phrase `key` as (text, language actually used)."""
    texts = PHRASES[key]
    if language in texts:
        return texts[language], language
    base = language.split("-")[0]
    for candidate, text in texts.items():
        if candidate.split("-")[0] == base:
            return text, candidate
    return texts[FALLBACK_LANGUAGE], FALLBACK_LANGUAGE
