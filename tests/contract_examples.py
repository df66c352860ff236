"""The YAML examples of the public contract, which must stay valid."""

CONTRACT_FLOW = """\
flow: support                  # defaults to the file name
numbers: ["+15005550006"]      # the `To` numbers this flow answers; `default: true` = catch-all
languages: [en-US, vi-VN, ar-XA]   # first is the default
start: welcome
steps:
  welcome:
    say: {en-US: "Thanks for calling.", vi-VN: "Cảm ơn quý khách đã gọi.", ar-XA: "شكرا لاتصالك."}
    next: language
  language:
    menu:
      prompt: "For English press 1. Tiếng Việt nhấn 2. للعربية اضغط 3."
      options:
        "1": {language: en-US, next: main}
        "2": {language: vi-VN, next: main}
        "3": {language: ar-XA, next: main}
      attempts: 3              # then `otherwise`
      otherwise: main
  main:
    menu:
      prompt:
        en-US: "Billing, press 1. Technical support, press 2."
        vi-VN: "Thanh toán, nhấn 1. Hỗ trợ kỹ thuật, nhấn 2."
        ar-XA: "للفواتير اضغط 1. للدعم الفني اضغط 2."
      speech: true             # also accept spoken answers
      options: {"1": billing, "2": tech}
      attempts: 3
      otherwise: bye
  billing: {route: {queue: billing, otherwise: voicemail}}
  tech:    {route: {queue: tech, otherwise: voicemail}}
  voicemail:
    voicemail:
      prompt: {en-US: "Please leave a message after the tone.", vi-VN: "Vui lòng để lại lời nhắn sau tiếng bíp.", ar-XA: "يرجى ترك رسالة بعد سماع الصفارة."}
      max_seconds: 120
  bye: {say: {en-US: "Goodbye.", vi-VN: "Tạm biệt.", ar-XA: "مع السلامة."}, hangup: true}
"""  # noqa: E501 - verbatim from the contract
CONTRACT_POOLS = """\
pools:
  hanoi:
    timezone: Asia/Ho_Chi_Minh
    queues: [billing, tech]
    languages: [vi-VN, en-US]
    priority: 1                          # lower is tried first among pools on shift (default 100)
    shifts:
      - {days: mon-fri, from: "08:00", to: "17:00"}
      - {days: [sat], from: "22:00", to: "06:00"}   # ends the next morning
    holidays: {country: VN, dates: ["2026-09-02"]}
    strategy: simultaneous               # simultaneous | sequential | round_robin | longest_idle
    ring_seconds: 20
    agents:
      - {name: Lan, phone: "+84901234567"}
      - {name: Minh, client: minh}
      - {name: Desk, sip: "sip:desk@pbx.example.com"}
"""
