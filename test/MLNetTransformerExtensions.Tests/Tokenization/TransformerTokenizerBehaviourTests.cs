using MLNetTransformerExtensions.Tokenization;
using static MLNetTransformerExtensions.Tests.Tokenization.TokenizerFixtures;

namespace MLNetTransformerExtensions.Tests.Tokenization;

/// <summary>Truncation, padding, special-token handling and BERT normalization beyond the fixture cases.</summary>
[TestClass]
public sealed class TransformerTokenizerBehaviourTests
{
    private static readonly TransformerTokenizer Bert = TransformerTokenizer.FromFolder(Folder("hf-tiny", "bert"));
    private static readonly TransformerTokenizer Roberta = TransformerTokenizer.FromFolder(Folder("hf-tiny", "roberta"));
    private static readonly TransformerTokenizer Gpt2 = TransformerTokenizer.FromFolder(Folder("hf-tiny", "gpt2"));

    [TestMethod]
    public void LongestFirstEqualsRemovingOneTokenAtATimeFromTheLonger()
    {
        for (var first = 0; first <= 12; first++)
        {
            for (var second = 0; second <= 12; second++)
            {
                for (var excess = 1; excess <= first + second; excess++)
                {
                    // transformers' truncate_sequences: the first loses a token only while strictly longer.
                    var (a, b) = (first, second);
                    for (var i = 0; i < excess; i++)
                    {
                        if (a > b)
                        {
                            a--;
                        }
                        else
                        {
                            b--;
                        }
                    }

                    Assert.AreEqual((first - a, second - b), TransformerTokenizer.LongestFirst(first, second, excess, isPair: true), $"{first}, {second}, remove {excess}");
                }
            }
        }

        Assert.AreEqual((3, 0), TransformerTokenizer.LongestFirst(10, 0, 3, isPair: false));
    }

    [TestMethod]
    public void PairTruncationKeepsBothTextsAtEqualLength()
    {
        var first = Bert.EncodeWithoutSpecialTokens("one two three four five six seven eight nine ten");
        var second = Bert.EncodeWithoutSpecialTokens("alpha beta gamma delta epsilon zeta eta theta");
        var encoded = Bert.Encode("one two three four five six seven eight nine ten", "alpha beta gamma delta epsilon zeta eta theta", maxLength: 11);
        Assert.IsTrue(encoded.Truncated);
        Assert.AreEqual(11, encoded.Length);
        var (dropFirst, dropSecond) = TransformerTokenizer.LongestFirst(first.Count, second.Count, first.Count + second.Count + 3 - 11, isPair: true);
        var expected = new[] { Bert.ClsTokenId!.Value }
            .Concat(first.Take(first.Count - dropFirst)).Append(Bert.SepTokenId!.Value)
            .Concat(second.Take(second.Count - dropSecond)).Append(Bert.SepTokenId!.Value).ToArray();
        CollectionAssert.AreEqual(expected, encoded.InputIds);
        Assert.AreEqual(4, first.Count - dropFirst);
        Assert.AreEqual(4, second.Count - dropSecond);
    }

    [TestMethod]
    public void MaxLengthDefaultsToTheModelLimitAndMustHoldTheSpecialTokens()
    {
        var longText = string.Join(' ', Enumerable.Repeat("word", 500));
        Assert.AreEqual(Bert.ModelMaxLength, Bert.Encode(longText).Length);
        Assert.AreEqual(2, Bert.Encode(longText, maxLength: 2).Length, "only [CLS] [SEP] fit");
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Bert.Encode("a", "b", maxLength: 2));
        StringAssert.Contains(error.Message, "3 special tokens");
    }

    [TestMethod]
    public void PaddingPutsPadIdsZeroMaskAndZeroTokenTypesOnEitherSide()
    {
        string[] texts = ["a short one", "a somewhat longer text with more words in it"];
        string?[] pairs = ["and its pair", null];
        var right = Bert.EncodeBatch(texts, pairs, maxLength: 64);
        var left = Bert.EncodeBatch(texts, pairs, maxLength: 64, PaddingSide.Left);
        var rows = texts.Select((t, i) => Bert.Encode(t, pairs[i], 64)).ToArray();
        var width = rows.Max(r => r.Length);
        Assert.AreEqual(width, right.SequenceLength);

        for (var row = 0; row < rows.Length; row++)
        {
            var padding = width - rows[row].Length;
            var rightRow = right.InputIds.AsSpan(row * width, width).ToArray();
            var leftRow = left.InputIds.AsSpan(row * width, width).ToArray();
            CollectionAssert.AreEqual(rows[row].InputIds.Select(i => (long)i).Concat(Enumerable.Repeat((long)Bert.PadTokenId, padding)).ToArray(), rightRow);
            CollectionAssert.AreEqual(Enumerable.Repeat((long)Bert.PadTokenId, padding).Concat(rows[row].InputIds.Select(i => (long)i)).ToArray(), leftRow);
            CollectionAssert.AreEqual(Enumerable.Repeat(1L, rows[row].Length).Concat(Enumerable.Repeat(0L, padding)).ToArray(), right.AttentionMask.AsSpan(row * width, width).ToArray());
            CollectionAssert.AreEqual(Enumerable.Repeat(0L, padding).Concat(Enumerable.Repeat(1L, rows[row].Length)).ToArray(), left.AttentionMask.AsSpan(row * width, width).ToArray());
            CollectionAssert.AreEqual(rows[row].TokenTypeIds.Select(i => (long)i).Concat(Enumerable.Repeat(0L, padding)).ToArray(), right.TokenTypeIds.AsSpan(row * width, width).ToArray());
            Assert.AreEqual(padding, left.FirstTokenColumn(row));
            Assert.AreEqual(width - 1, left.LastTokenColumn(row));
        }

        Assert.IsTrue(rows[0].TokenTypeIds.Contains(1), "the pair row has a second segment");
    }

    [TestMethod]
    public void BatchArgumentsAreChecked()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => Bert.EncodeBatch(["a", "b"], ["x"], 16));
        StringAssert.Contains(error.Message, "textPairs has 1 entries but texts has 2");
        var empty = Gpt2.EncodeBatch([""], null, 16);
        Assert.AreEqual(0, empty.SequenceLength);
        Assert.AreEqual(-1, empty.LastTokenColumn(0));
    }

    [TestMethod]
    public void SpecialTokenStringsAreAtomicAndCaseSensitive()
    {
        var tokens = Bert.ConvertIdsToTokens(Bert.Encode("a [MASK] b [mask]").InputIds);
        CollectionAssert.AreEqual(new[] { "[CLS]", "a", "[MASK]", "b", "[", "m", "##a", "##s", "##k", "]", "[SEP]" }, tokens.ToArray());

        var eot = Gpt2.EosTokenId!.Value;
        var ids = Gpt2.EncodeWithoutSpecialTokens("Hello <|endoftext|> world");
        CollectionAssert.AreEqual(Gpt2.EncodeWithoutSpecialTokens("Hello ").Append(eot).Concat(Gpt2.EncodeWithoutSpecialTokens(" world")).ToArray(), ids.ToArray());

        // <mask> has lstrip: the spaces before it go, the one after stays with the next word.
        CollectionAssert.AreEqual(
            Roberta.EncodeWithoutSpecialTokens("It was").Append(Roberta.MaskTokenId!.Value).Concat(Roberta.EncodeWithoutSpecialTokens(" good")).ToArray(),
            Roberta.EncodeWithoutSpecialTokens("It was   <mask> good").ToArray());
    }

    [TestMethod]
    public void IdsAndTokensConvertBothWays()
    {
        Assert.AreEqual(Bert.MaskTokenId, Bert.TokenToId("[MASK]"));
        Assert.IsNull(Bert.TokenToId("definitely-not-a-token"));
        Assert.AreEqual("Ġworld", Roberta.ConvertIdsToTokens([Roberta.TokenToId("Ġworld")!.Value])[0]);
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Bert.ConvertIdsToTokens([5, Bert.VocabularySize]));
        StringAssert.Contains(error.Message, "ids[1]");
    }

    [TestMethod]
    public void BertNormalizationFollowsPythonAndBasicTokenizer()
    {
        Assert.AreEqual("οδος σοφος.", BertBasicNormalizer.PythonLower("ΟΔΟΣ ΣΟΦΟΣ."));
        Assert.AreEqual("σ", BertBasicNormalizer.PythonLower("Σ"), "a lone sigma is not word-final");
        Assert.AreEqual("i\u0307stanbul", BertBasicNormalizer.PythonLower("İSTANBUL"));
        Assert.AreEqual("cafe angstrom", BertBasicNormalizer.StripAccents("café ångström"));

        var normalizer = new BertBasicNormalizer(cleanText: true, tokenizeChineseChars: true, lowerCase: true, stripAccents: true);
        Assert.AreEqual("a bc 東  d e", normalizer.Normalize("A\tb\u200Bc\u0000東\u00A0D\u0085\u2003E"));

        var words = new BertBasicPreTokenizer(splitOnPunctuation: true).PreTokenize("don't  $5,000 😀x").Select(w => "don't  $5,000 😀x".Substring(w.Offset, w.Length));
        CollectionAssert.AreEqual(new[] { "don", "'", "t", "$", "5", ",", "000", "😀x" }, words.ToArray());
    }
}
