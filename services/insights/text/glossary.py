"""A contact centre's bilingual glossary: Japanese and English words that name one concept.

Without it, a Japanese and an English message about a late parcel share no term and fall into
two topics. Each concept below adds one shared feature (`≈concept`) next to the words; labels
still show the customers' own words. Concepts outside the glossary still cluster, per language
(docs/insights.md, "Topics and similar cases"). Entries are Sudachi's normalised forms and
plural-folded English words, as `terms` produces them.
"""

from __future__ import annotations

CONCEPT_PREFIX = "≈"

_CONCEPTS: dict[str, str] = {
    "delivery": "delivery deliver delivered arrive arrived arriving parcel package shipment "
    "shipping ship shipped courier tracking transit 届く 届ける 配送 配達 発送 到着 荷物 "
    "追跡 お届け 届け 再配達 出荷",
    "delay": "late delay delayed waiting yet overdue slow 遅れる 遅延 遅い 未だ",
    "charge": "charge charged billed bill billing payment paid statement debit 請求 二重請求 "
    "引き落とし 引き落とす 決済 支払い 支払う 明細 代金 金額",
    "duplicate": "twice double duplicate two identical 二重 二回 重複 倍",
    "cancel": "cancel cancelling cancellation cancelled unsubscribe stop pause end membership "
    "解約 停止 止める 辞める 休止 退会 キャンセル",
    "subscription": "subscription plan recurring monthly 定期便 定期 定期購入 定期コース サブスク "
    "サブスクリプション",
    "reaction": "rash itchy itch red skin swollen burning allergic allergy allergen reaction "
    "side headache nausea dizzy stomach ache pain 副作用 痒み 痒い 湿疹 気触れ 肌 肌荒れ "
    "赤い 頭痛 吐き気 胃 アレルギー 痛い 腹 ひりひり ヒリヒリ 好転反応",
    "safety": "safe pregnant medication medicine 妊娠 薬 服用 大丈夫 安全",
    "login": "login log sign password credential account locked verification reset "
    "username ログイン パスワード 認証 アカウント ロック マイページ 再設定 リセット",
    "address": "address moved move apartment office 住所 転居 引っ越す 引っ越し 届け先 送り先 "
    "配送先 部屋番号 実家",
    "refund": "refund refunded money-back return returned guarantee 返金 返品 返送 返金保証 "
    "振り込む 戻る 返る",
    "usage": "take capsule tablet apply use dose store storage expiry result 飲む 粒 使う "
    "使い方 塗る 保存 賞味期限 効果 タイミング 適量 食前 食後",
    "coupon": "coupon discount promo code campaign sale point referral reward promotion "
    "クーポン 割り引き 割引 キャンペーン セール ポイント 特典 紹介 無料",
    "app": "app application ios android iphone update version screen アプリ アップデート "
    "最新版 画面 機種",
    "crash": "crash crashing crashed freeze freezing frozen closing blank start "
    "落ちる クラッシュ フリーズ 強制終了 起動 終了 固まる 重い",
    "damaged": "damaged broken wrong 破損 壊れる 間違う",
}

GLOSSARY: dict[str, str] = {
    word: CONCEPT_PREFIX + concept for concept, words in _CONCEPTS.items() for word in words.split()
}


def concepts(terms: list[str]) -> list[str]:
    """The glossary concepts the terms name, one feature per mention."""
    return [GLOSSARY[t] for t in terms if t in GLOSSARY]
