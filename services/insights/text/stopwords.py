"""Words that say nothing about what a support message is about, in English and Japanese."""

from __future__ import annotations


def _split(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Function words and the pleasantries and filler every support message shares; a word here
# would otherwise head every topic's label.
ENGLISH = _split(
    """
    a about above after again against all also am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn doing
    don down during each few for from further had hadn has hasn have haven having he her here
    hers herself him himself his how i if in into is isn it its itself just let me more most my
    myself no nor not now of off on once only or other ought our ours ourselves out over own
    same she should shouldn so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was wasn we were weren what when
    where which while who whom why will with won would wouldn you your yours yourself
    yourselves im ive id ill dont cant wont isnt didnt doesnt havent hasnt wasnt arent youre
    hello hi hey dear thanks thank regard regards please pls plz team sir madam ok okay yes
    yeah sorry help know want wanted need needs like still get got getting really already
    even one thing things something anything way much many lot bit could able make made
    tell told ask asked asking question wondering wonder hope hoping kind best sincerely cheers
    let us today yesterday tomorrow week weeks day days time ago since ever via etc
    """
)

JAPANESE = _split(
    """
    する ある いる なる できる 出来る 思う いう 言う 致す いたす 頂く いただく 下さる くださる
    申す 存ずる 願う お願い 御願い 伺う 分かる 分る わかる 知る 見る 来る 行く くれる もらう
    貰う 教える 聞く 言える 居る 有る 無い ない よい 良い いい 欲しい ほしい
    こと 事 もの 物 よう 様 ため 為 方 件 際 中 今 前 後 者 場合 感じ 状態 旨 等 など
    確認 対応 連絡 問い合わせ 問合せ 質問 回答 返信 ご連絡 内容 詳細 現在 今回 先日
    今日 昨日 明日 先週 今週 来週 以前 以降 すみません 申し訳 恐れ入る 失礼 宜しい
    よろしい 本日 為る 居る 成る 仕舞う 御座る 呉れる 貰う 遣る 置く 見える 出る 入る 有り
    ござる 終わる 続く 始める 頂ける 致し 下さい 願える 良う 御 お 様 さま 方々
    私 わたし 自分 皆様 御社 貴社 担当 担当者 さん 様子
    """
)
