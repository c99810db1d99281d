using System.Text;
using Microsoft.ML.Tokenizers;
using static MLNetTransformerExtensions.Tests.Tokenization.TokenizerFixtures;

namespace MLNetTransformerExtensions.Tests.Tokenization;

/// <summary>
/// Why TokenizerJsonReader is still ours under Microsoft.ML.Tokenizers 3.0: the library's one tokenizer.json factory,
/// <see cref="SentencePieceTokenizer.CreateFromTokenizerJson"/>, reads Unigram (SentencePiece) models only, and refuses
/// the WordPiece and byte-level BPE files of every model type this library supports (BERT, DistilBERT, RoBERTa, GPT-2),
/// which our reader turns into the fixtures' HuggingFace ids (TokenizerJsonTests). When a later version reads them,
/// the first test fails and says so.
/// </summary>
[TestClass]
public sealed class LibraryTokenizerJsonTests
{
    [TestMethod]
    [DataRow("bert")]
    [DataRow("roberta")]
    [DataRow("gpt2")]
    public void TheLibrarysFactoryRefusesWordPieceAndBytePairFiles(string model)
    {
        var json = TokenizerJsonTests.BuildTokenizerJson(Folder("hf-tiny", model), model).ToJsonString();
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(json));
        var error = Assert.Throws<Exception>(() => SentencePieceTokenizer.CreateFromTokenizerJson(stream, addBeginningOfSentence: false, addEndOfSentence: false),
            $"Microsoft.ML.Tokenizers now reads a {model} tokenizer.json: compare its ids with TokenizerJsonReader's and use it where they agree");
        StringAssert.Contains(error.Message, "Unigram");
    }

    [TestMethod]
    public void TheLibrarysFactoryReadsAUnigramFile()
    {
        // A tiny Unigram model: the best-scoring segmentation of "hello" is the whole word, of "help" two pieces.
        const string json = """
            {
              "added_tokens": [{"id": 0, "content": "<unk>", "special": true}],
              "normalizer": null,
              "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": true, "prepend_scheme": "always"},
              "post_processor": null,
              "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": false,
                "vocab": [["<unk>", 0.0], ["\u2581hello", -1.0], ["\u2581hel", -2.0], ["p", -2.5], ["\u2581", -3.0], ["h", -4.0], ["e", -4.0], ["l", -4.0], ["o", -4.0]]}
            }
            """;
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(json));
        var tokenizer = SentencePieceTokenizer.CreateFromTokenizerJson(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        CollectionAssert.AreEqual(new[] { 1 }, tokenizer.EncodeToIds("hello").ToArray());
        CollectionAssert.AreEqual(new[] { 2, 3 }, tokenizer.EncodeToIds("help").ToArray());
    }
}
