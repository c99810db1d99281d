using System.Text.Json;
using Microsoft.ML.Tokenizers;
using MLNetTransformerExtensions.Tokenization;
using static MLNetTransformerExtensions.Tests.Tokenization.TokenizerFixtures;

namespace MLNetTransformerExtensions.Tests.Tokenization;

/// <summary>
/// BART (byte-level BPE, as RoBERTa) and T5 (SentencePiece unigram, slow T5Tokenizer with legacy = true) against the
/// hf-tiny-seq2seq fixtures: input ids, tokens and label sequences exactly; and where Microsoft.ML.Tokenizers 3.0
/// differs from SentencePiece, the difference that our code covers.
/// </summary>
[TestClass]
public sealed class Seq2SeqTokenizerTests
{
    private const string Set = "hf-tiny-seq2seq";

    [TestMethod]
    [DataRow("bart")]
    [DataRow("bart-lm")]
    [DataRow("t5")]
    [DataRow("t5-v1_1")]
    public void EveryCaseMatchesHuggingFace(string model) =>
        TransformerTokenizerFixtureTests.AssertCasesMatch(TransformerTokenizer.FromFolder(Folder(Set, model)), Expected(Set, model), minimumCases: 6);

    [TestMethod]
    [DataRow("bart-lm")]
    [DataRow("t5")]
    [DataRow("t5-v1_1")]
    public void TargetsAreTokenizedAsLabels(string model)
    {
        var tokenizer = TransformerTokenizer.FromFolder(Folder(Set, model));
        foreach (var target in Expected(Set, model).GetProperty("targets").EnumerateArray())
        {
            var labels = tokenizer.Encode(target.GetProperty("target").GetString()!).InputIds;
            CollectionAssert.AreEqual(Ints(target.GetProperty("labels")), labels, target.GetProperty("target").GetString());
            CollectionAssert.AreEqual(Strings(target.GetProperty("tokens")), tokenizer.ConvertIdsToTokens(labels).ToArray());
        }
    }

    [TestMethod]
    [DataRow("bart", 64)]
    [DataRow("t5", 512)]
    [DataRow("t5-v1_1", 512)]
    public void SpecialIdsAndLimitsComeFromTheFiles(string model, int modelMaxLength)
    {
        var tokenizer = TransformerTokenizer.FromFolder(Folder(Set, model));
        var expected = Expected(Set, model);
        var ids = expected.GetProperty("special_token_ids");
        Assert.AreEqual(ids.GetProperty("pad").GetInt32(), tokenizer.PadTokenId);
        Assert.AreEqual(ids.GetProperty("eos").GetInt32(), tokenizer.EosTokenId);
        Assert.AreEqual(ids.GetProperty("unk").GetInt32(), tokenizer.UnkTokenId);
        Assert.AreEqual(expected.GetProperty("tokenizer_len").GetInt32(), tokenizer.VocabularySize);
        Assert.AreEqual(modelMaxLength, tokenizer.ModelMaxLength, "BART's table holds max_position_embeddings positions (+2 rows); T5 has model_max_length");
        if (model.StartsWith("t5", StringComparison.Ordinal))
        {
            Assert.AreEqual(TokenizerFamily.T5, tokenizer.Family);
            Assert.IsNull(tokenizer.BosTokenId);
            Assert.AreEqual(tokenizer.VocabularySize - 1, tokenizer.TokenToId("<extra_id_0>"), "sentinels count down from the last id");
            var extra = expected.GetProperty("extra_ids").GetInt32();
            Assert.AreEqual(tokenizer.VocabularySize - extra, tokenizer.TokenToId($"<extra_id_{extra - 1}>"));
        }
        else
        {
            Assert.AreEqual(TokenizerFamily.Roberta, tokenizer.Family);
            Assert.AreEqual(ids.GetProperty("mask").GetInt32(), tokenizer.MaskTokenId);
        }
    }

    [TestMethod]
    public void AT5TokenizerSavesAndLoadsBack()
    {
        var tokenizer = TransformerTokenizer.FromFolder(Folder(Set, "t5"));
        var folder = TempFolder();
        try
        {
            tokenizer.SaveTo(folder);
            File.Copy(Path.Combine(Folder(Set, "t5"), "config.json"), Path.Combine(folder, "config.json"));
            var reloaded = TransformerTokenizer.FromFolder(folder);
            const string text = "sst2 sentence: a <extra_id_0> film";
            CollectionAssert.AreEqual(tokenizer.Encode(text).InputIds, reloaded.Encode(text).InputIds);
            using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "tokenizer_config.json")));
            Assert.AreEqual("T5Tokenizer", config.RootElement.GetProperty("tokenizer_class").GetString());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void TheLibrarysModelFileFactoryFailsOnAModelWithoutBos()
    {
        // Every T5 spiece.model is trained with bos_id = -1; SentencePieceTokenizer.Create(Stream) indexes the vocabulary
        // with it. We decode the file ourselves and use the in-memory factory (SentencePieceModelFile); when this stops
        // throwing, the library can read the file directly.
        using var stream = File.OpenRead(Path.Combine(Folder(Set, "t5"), "spiece.model"));
        Assert.Throws<IndexOutOfRangeException>(() => SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false),
            "Microsoft.ML.Tokenizers now reads a T5 spiece.model: compare its ids with SentencePieceModelFile's route");
    }

    [TestMethod]
    [DataRow("t5")]
    [DataRow("t5-v1_1")]
    public void ARunOfUnknownCharactersIsOneUnknownTokenAsInSentencePiece(string model)
    {
        var file = SentencePieceModelFile.Read(File.ReadAllBytes(Path.Combine(Folder(Set, model), "spiece.model")), model);
        var library = file.CreateTokenizer(model);
        const string text = "ok \U0001F600\U0001F44D ok";
        var unknown = file.UnknownId;
        Assert.AreEqual(2, library.EncodeToIds(text).Count(id => id == unknown), "the library emits one <unk> per unknown character");

        var ours = TransformerTokenizer.FromFolder(Folder(Set, model)).EncodeWithoutSpecialTokens(text);
        Assert.AreEqual(1, ours.Count(id => id == unknown), "SentencePiece (and HuggingFace) merge the run into one <unk>");
        var pieces = library.EncodeToIds(text);
        CollectionAssert.AreEqual(pieces.Where((id, i) => id != unknown || pieces[i - 1] != unknown).ToArray(), ours.ToArray());
    }
}
