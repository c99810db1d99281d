using System.Text.Json;
using MLNetTransformerExtensions.Tokenization;
using static MLNetTransformerExtensions.Tests.Tokenization.TokenizerFixtures;

namespace MLNetTransformerExtensions.Tests.Tokenization;

/// <summary>Parity with transformers' slow tokenizers on every case of the eight fixture folders.</summary>
[TestClass]
public sealed class TransformerTokenizerFixtureTests
{
    [TestMethod]
    [DataRow("hf-tiny", "bert")]
    [DataRow("hf-tiny", "distilbert")]
    [DataRow("hf-tiny", "roberta")]
    [DataRow("hf-tiny", "gpt2")]
    [DataRow("hf-tiny-lm", "bert")]
    [DataRow("hf-tiny-lm", "distilbert")]
    [DataRow("hf-tiny-lm", "roberta")]
    [DataRow("hf-tiny-lm", "gpt2")]
    public void EveryCaseMatchesHuggingFace(string set, string model)
    {
        var expected = Expected(set, model);
        AssertCasesMatch(TransformerTokenizer.FromFolder(Folder(set, model)), expected);
    }

    internal static void AssertCasesMatch(TransformerTokenizer tokenizer, JsonElement expected, int minimumCases = 8)
    {
        var maxLength = expected.GetProperty("max_length").GetInt32();
        var cases = Cases(expected).ToList();
        Assert.IsTrue(cases.Count >= minimumCases, "the fixture should have its cases");
        foreach (var c in cases)
        {
            var encoded = tokenizer.Encode(c.Text, c.TextPair, maxLength);
            CollectionAssert.AreEqual(c.InputIds, encoded.InputIds, $"input_ids of {c}");
            CollectionAssert.AreEqual(c.Tokens, tokenizer.ConvertIdsToTokens(encoded.InputIds).ToArray(), $"tokens of {c}");
            if (c.TokenTypeIds is not null)
            {
                CollectionAssert.AreEqual(c.TokenTypeIds, encoded.TokenTypeIds, $"token_type_ids of {c}");
            }
            else if (tokenizer.Family != TokenizerFamily.Bert)
            {
                CollectionAssert.AreEqual(new int[c.InputIds.Length], encoded.TokenTypeIds, $"RoBERTa and GPT-2 token types are all 0 ({c})");
            }

            CollectionAssert.AreEqual(c.AttentionMask, Enumerable.Repeat(1, encoded.Length).ToArray(), $"attention_mask of {c}");
            Assert.AreEqual(c.Truncated, encoded.Truncated, $"truncated flag of {c}");
        }
    }

    [TestMethod]
    [DataRow("hf-tiny", "bert")]
    [DataRow("hf-tiny", "distilbert")]
    [DataRow("hf-tiny", "roberta")]
    [DataRow("hf-tiny", "gpt2")]
    [DataRow("hf-tiny-lm", "bert")]
    [DataRow("hf-tiny-lm", "distilbert")]
    [DataRow("hf-tiny-lm", "roberta")]
    [DataRow("hf-tiny-lm", "gpt2")]
    public void RightPaddedBatchMatchesHuggingFace(string set, string model)
    {
        var expected = Expected(set, model);
        AssertBatchMatches(TransformerTokenizer.FromFolder(Folder(set, model)), expected, "batch", PaddingSide.Right);
    }

    [TestMethod]
    [DataRow("hf-tiny")]
    [DataRow("hf-tiny-lm")]
    public void Gpt2LeftPaddedBatchMatchesHuggingFace(string set)
    {
        var expected = Expected(set, "gpt2");
        AssertBatchMatches(TransformerTokenizer.FromFolder(Folder(set, "gpt2")), expected, "batch_left", PaddingSide.Left);
    }

    private static void AssertBatchMatches(TransformerTokenizer tokenizer, JsonElement expected, string batchName, PaddingSide side)
    {
        var batch = expected.GetProperty(batchName);
        Assert.AreEqual(side == PaddingSide.Left ? "left" : "right", batch.GetProperty("padding_side").GetString());
        var cases = Cases(expected).ToList();
        var rows = Ints(batch.GetProperty("case_ids")).Select(i => cases[i]).ToList();
        var encoded = tokenizer.EncodeBatch(
            rows.Select(c => c.Text).ToList(),
            rows.Any(c => c.TextPair is not null) ? rows.Select(c => c.TextPair).ToList() : null,
            expected.GetProperty("max_length").GetInt32(),
            side);

        var expectedIds = FlatLongs(batch.GetProperty("input_ids"));
        Assert.AreEqual(rows.Count, encoded.BatchSize);
        Assert.AreEqual(expectedIds.Length / rows.Count, encoded.SequenceLength, "padded to the longest row");
        CollectionAssert.AreEqual(expectedIds, encoded.InputIds, "input_ids");
        CollectionAssert.AreEqual(FlatLongs(batch.GetProperty("attention_mask")), encoded.AttentionMask, "attention_mask");
        if (batch.TryGetProperty("token_type_ids", out var types))
        {
            CollectionAssert.AreEqual(FlatLongs(types), encoded.TokenTypeIds, "token_type_ids");
        }

        if (batch.TryGetProperty("pad_token_id", out var pad))
        {
            Assert.AreEqual(pad.GetInt32(), tokenizer.PadTokenId);
        }

        for (var row = 0; row < rows.Count; row++)
        {
            Assert.AreEqual(rows[row].InputIds.Length, encoded.Lengths[row]);
            Assert.AreEqual(rows[row].Truncated, encoded.Truncated[row]);
            Assert.AreEqual(rows[row].InputIds[^1], encoded.InputIds[row * encoded.SequenceLength + encoded.LastTokenColumn(row)], "last real token");
        }
    }

    [TestMethod]
    [DataRow("hf-tiny", "bert", 128)]
    [DataRow("hf-tiny", "distilbert", 64)]
    [DataRow("hf-tiny", "roberta", 64)]
    [DataRow("hf-tiny", "gpt2", 128)]
    [DataRow("hf-tiny-lm", "bert", 64)]
    [DataRow("hf-tiny-lm", "roberta", 64)]
    [DataRow("hf-tiny-lm", "gpt2", 64)]
    public void SizesAndSpecialTokensComeFromTheConfigFiles(string set, string model, int modelMaxLength)
    {
        var tokenizer = TransformerTokenizer.FromFolder(Folder(set, model));
        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Folder(set, model), "config.json")));
        Assert.AreEqual(config.RootElement.GetProperty("vocab_size").GetInt32(), tokenizer.VocabularySize);
        Assert.AreEqual(config.RootElement.GetProperty("pad_token_id").GetInt32(), tokenizer.PadTokenId);
        Assert.AreEqual(modelMaxLength, tokenizer.ModelMaxLength);
        Assert.AreEqual(model, tokenizer.ModelType);
        switch (model)
        {
            case "bert" or "distilbert":
                Assert.AreEqual(TokenizerFamily.Bert, tokenizer.Family);
                Assert.AreEqual("[MASK]", tokenizer.MaskToken);
                Assert.AreEqual(tokenizer.TokenToId("[CLS]"), tokenizer.ClsTokenId);
                Assert.AreEqual(tokenizer.TokenToId("[SEP]"), tokenizer.SepTokenId);
                Assert.AreEqual(tokenizer.TokenToId("[UNK]"), tokenizer.UnkTokenId);
                Assert.IsNull(tokenizer.BosTokenId);
                Assert.AreEqual(2, tokenizer.SpecialTokenCount(pair: false));
                Assert.AreEqual(3, tokenizer.SpecialTokenCount(pair: true));
                break;
            case "roberta":
                Assert.AreEqual(TokenizerFamily.Roberta, tokenizer.Family);
                Assert.AreEqual("<mask>", tokenizer.MaskToken);
                Assert.AreEqual(config.RootElement.GetProperty("bos_token_id").GetInt32(), tokenizer.ClsTokenId);
                Assert.AreEqual(config.RootElement.GetProperty("eos_token_id").GetInt32(), tokenizer.SepTokenId);
                Assert.AreEqual(4, tokenizer.SpecialTokenCount(pair: true));
                break;
            case "gpt2":
                Assert.AreEqual(TokenizerFamily.Gpt2, tokenizer.Family);
                Assert.IsNull(tokenizer.MaskToken);
                Assert.IsNull(tokenizer.MaskTokenId);
                Assert.AreEqual(config.RootElement.GetProperty("eos_token_id").GetInt32(), tokenizer.EosTokenId);
                Assert.AreEqual(tokenizer.EosTokenId, tokenizer.PadTokenId, "GPT-2 pads with <|endoftext|>");
                Assert.AreEqual(0, tokenizer.SpecialTokenCount(pair: false));
                break;
        }
    }

    [TestMethod]
    [DataRow("bert")]
    [DataRow("distilbert")]
    [DataRow("roberta")]
    [DataRow("gpt2")]
    public void LabelWordsAndMaskTokenMatchTheLmFixtures(string model)
    {
        var expected = Expected("hf-tiny-lm", model);
        var tokenizer = TransformerTokenizer.FromFolder(Folder("hf-tiny-lm", model));
        foreach (var word in expected.GetProperty("label_words").EnumerateArray())
        {
            var ids = tokenizer.EncodeWithoutSpecialTokens(word.GetProperty("word").GetString()!);
            CollectionAssert.AreEqual(new[] { word.GetProperty("token_id").GetInt32() }, ids.ToArray(), word.GetRawText());
            Assert.AreEqual(word.GetProperty("token").GetString(), tokenizer.ConvertIdsToTokens(ids)[0]);
            Assert.AreEqual(ids[0], tokenizer.TokenToId(word.GetProperty("token").GetString()!));
        }

        if (expected.TryGetProperty("mask_token_id", out var maskId))
        {
            Assert.AreEqual(maskId.GetInt32(), tokenizer.MaskTokenId);
            Assert.AreEqual(expected.GetProperty("mask_token").GetString(), tokenizer.MaskToken);
        }

        var firstCase = expected.GetProperty("cases")[0];
        if (firstCase.TryGetProperty("multi_token_label_words", out var multi))
        {
            foreach (var word in multi.EnumerateArray())
            {
                CollectionAssert.AreEqual(Ints(word.GetProperty("token_ids")), tokenizer.EncodeWithoutSpecialTokens(word.GetProperty("word").GetString()!).ToArray());
            }
        }
    }
}
