"""What the demo's generated customers write and agents answer, per topic, in Japanese and English.

Phrasing styles follow tests/data/voc_messages.jsonl, but every text here is assembled from
parts by a seeded generator (tsunagu.local.demo_contacts), so the demo never replays the
labelled data set that measures the topic model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TopicPhrases:
    """One topic's parts.

    Attributes:
        ja: Japanese requests (a subject and a question each).
        en: English requests.
        resolution: The resolution note an agent writes when the case is solved.
        queue: The queue such contacts land in.
        csat: Relative weights of CSAT scores 1..5 after such a case.
    """

    ja: tuple[str, ...]
    en: tuple[str, ...]
    resolution: str
    queue: str
    csat: tuple[int, int, int, int, int]


TOPICS: dict[str, TopicPhrases] = {
    "delivery_delay": TopicPhrases(
        ja=(
            "注文した商品がまだ届きません。いつ届きますか",
            "定期便の配送が{days}日遅れています。状況を教えてください",
            "発送済みになっているのに荷物が来ません",
            "追跡番号で調べても配達状況が更新されていません",
            "お届け予定日を過ぎても届いていないです",
        ),
        en=(
            "My order still hasn't arrived, when will it be delivered?",
            "The delivery is {days} days late, can you check the shipping status?",
            "Tracking hasn't updated for days, is my parcel lost?",
            "My monthly box did not arrive on the scheduled date.",
            "The package was marked as shipped but never arrived.",
        ),
        resolution="倉庫に確認し、翌日お届けの速達で再発送しました (re-shipped by express).",
        queue="logistics",
        csat=(3, 3, 3, 2, 1),
    ),
    "double_charge": TopicPhrases(
        ja=(
            "クレジットカードに同じ金額が2回請求されています",
            "今月の定期便の代金が二重に引き落とされました",
            "1回しか注文していないのに請求が2件あります",
            "明細に同じ請求が並んでいます。確認してください",
        ),
        en=(
            "I was charged twice for the same order.",
            "My card shows two identical charges this month.",
            "The subscription fee was taken twice, please fix the billing.",
            "Duplicate payment on my statement, can you refund one?",
        ),
        resolution="重複した決済を取り消し、片方を返金しました (duplicate charge voided).",
        queue="billing",
        csat=(1, 1, 2, 3, 3),
    ),
    "cancellation": TopicPhrases(
        ja=(
            "定期便を解約したいです。手続きを教えてください",
            "在庫が余っているので定期購入を止めたいです",
            "効果が感じられないので解約をお願いします",
            "他社に切り替えるので定期コースをやめます",
            "経済的に厳しくなったので定期便を停止したいです",
        ),
        en=(
            "I want to cancel my subscription, please stop future shipments.",
            "I have too much product left, can I stop my plan?",
            "It isn't working for me, please cancel my subscription.",
            "I'm switching to another brand, cancel the recurring order.",
            "Money is tight, I need to cancel my subscription.",
        ),
        resolution="解約の理由を伺い、スキップ・減量・解約の選択肢をご案内しました.",
        queue="subscriptions",
        csat=(1, 1, 3, 3, 2),
    ),
    "side_effects": TopicPhrases(
        ja=(
            "飲み始めてから肌にかゆみが出ました。副作用でしょうか",
            "使用後に顔が赤くなりました。使い続けても大丈夫ですか",
            "薬を服用中ですが、一緒に飲んでも問題ないですか",
            "サプリを飲むと胃の調子が悪くなります",
        ),
        en=(
            "I got a rash after using the cream, is this a side effect?",
            "Is it safe to take this supplement with my medication?",
            "The capsules give me a stomach ache, should I stop?",
            "My skin became red and itchy after applying the serum.",
        ),
        resolution="使用を中止し医師に相談するようご案内、成分表をお送りしました.",
        queue="product-care",
        csat=(1, 1, 2, 3, 3),
    ),
    "login": TopicPhrases(
        ja=(
            "パスワードを忘れてログインできません",
            "パスワード再設定のメールが届きません",
            "マイページにログインするとエラーになります",
            "アカウントがロックされてしまいました",
        ),
        en=(
            "I can't log in, I forgot my password.",
            "The password reset email never arrives.",
            "My account is locked after too many login attempts.",
            "The reset link says it is invalid.",
        ),
        resolution="本人確認のうえパスワード再設定リンクを再送しました (reset link re-sent).",
        queue="technical",
        csat=(0, 1, 1, 3, 4),
    ),
    "address_change": TopicPhrases(
        ja=(
            "引っ越したのでお届け先の住所を変更したいです",
            "次回の定期便から配送先を変えてください",
            "注文後に住所の間違いに気づきました。修正できますか",
        ),
        en=(
            "I moved, please update my shipping address.",
            "Can I change the delivery address for my next shipment?",
            "I entered the wrong address, can you correct it before it ships?",
        ),
        resolution="配送先住所を更新し、次回発送分に反映しました (address updated).",
        queue="subscriptions",
        csat=(0, 0, 1, 3, 5),
    ),
    "refund": TopicPhrases(
        ja=(
            "返品した商品の返金がまだありません",
            "届いた商品が破損していたので返金してほしいです",
            "全額返金保証を使いたいです。手続きを教えてください",
        ),
        en=(
            "I returned the item weeks ago and still have no refund.",
            "The product arrived damaged, I'd like a refund.",
            "How do I use the money-back guarantee?",
        ),
        resolution="返品到着を確認し、カードへの返金処理を完了しました (refund issued).",
        queue="billing",
        csat=(1, 1, 2, 3, 3),
    ),
    "usage_question": TopicPhrases(
        ja=(
            "このサプリは1日何粒飲めばいいですか",
            "化粧水と美容液はどちらを先に使いますか",
            "開封後はどのくらいで使い切ればいいですか",
        ),
        en=(
            "How many capsules should I take per day?",
            "Should I apply the serum before or after the toner?",
            "How should I store the product after opening?",
        ),
        resolution="用法・用量と保存方法をご案内しました (usage explained).",
        queue="product-care",
        csat=(0, 0, 1, 3, 6),
    ),
    "coupon": TopicPhrases(
        ja=(
            "クーポンコードを入力しても使えません",
            "キャンペーンの割引が反映されていませんでした",
            "ポイントが付与されていません",
        ),
        en=(
            "The discount code doesn't work at checkout.",
            "My coupon was not applied to the order.",
            "I didn't get the points from the campaign.",
        ),
        resolution="割引額をポイントで補填しました (difference credited as points).",
        queue="billing",
        csat=(0, 1, 2, 3, 3),
    ),
    "app_crash": TopicPhrases(
        ja=(
            "アプリを開くとすぐに落ちます",
            "アップデートしてからアプリが起動しません",
            "アプリが購入画面でフリーズします",
        ),
        en=(
            "The app crashes as soon as I open it.",
            "After the update the app won't start.",
            "The app freezes on the checkout screen.",
        ),
        resolution="最新版への更新と再インストールで解消しました (reinstall fixed it).",
        queue="technical",
        csat=(1, 1, 2, 3, 2),
    ),
}

GREETINGS_JA = (
    "",
    "",
    "お世話になっております。",
    "こんにちは。",
    "いつもお世話になっております。",
)
GREETINGS_EN = ("", "", "Hi, ", "Hello team, ", "Good morning, ")
CLOSINGS_JA = ("", "", "よろしくお願いします。", "よろしくお願いいたします。")
CLOSINGS_EN = ("", "", " Thanks.", " Best regards.", " Sent from my iPhone")
REPLIES_JA = (
    "お問い合わせありがとうございます。確認してご連絡いたします。",
    "ご不便をおかけして申し訳ございません。担当部署に確認いたします。",
)
REPLIES_EN = (
    "Thank you for reaching out, we are looking into it.",
    "Sorry for the trouble, I'm checking this with the team now.",
)
FAMILY_NAMES = ("佐々木", "山本", "中村", "小林", "加藤", "吉田", "山田", "松本", "井上", "木村")
GIVEN_NAMES = ("陽子", "健太", "美咲", "翔", "由美", "大輔", "さくら", "直樹", "恵", "拓也")
EN_NAMES = ("Emma Clark", "Liam Wong", "Olivia Brown", "Noah Kim", "Mia Davis", "Lucas Reed")
