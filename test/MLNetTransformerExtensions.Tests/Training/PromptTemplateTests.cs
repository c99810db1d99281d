using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>Templates, label words and checkpoints that cannot make a prompt classifier, each refused with a message that says why.</summary>
[TestClass]
public sealed class PromptTemplateTests
{
    private static string Lm(string family) => TestPaths.Fixtures("hf-tiny-lm", family);

    private static PromptClassifier Create(string family, ClassifierKind kind, string? template, IReadOnlyList<string>? words, int maxLength = 32, IReadOnlyList<string>? labels = null) =>
        PromptClassifier.FromPretrained(Lm(family), labels ?? ["negative", "positive"], kind,
            new PromptOptions { Template = template, LabelWords = words }, maxLength, seed: 1, out _);

    private static void AssertRefused<TException>(Action action, params string[] fragments) where TException : Exception
    {
        var error = Assert.ThrowsExactly<TException>(action);
        foreach (var fragment in fragments)
        {
            StringAssert.Contains(error.Message, fragment);
        }
    }

    [TestMethod]
    public void ParsesPlaceholdersAndLiteralBraces()
    {
        var template = PromptTemplate.Parse("{{json}} {text} ? {mask}, {text2}");
        Assert.IsTrue(template.HasSecondText);
        Assert.IsTrue(template.HasMaskPlaceholder);
        Assert.AreEqual("{{json}} {text} ? {mask}, {text2}", template.ToString());
        Assert.IsFalse(PromptTemplate.Parse("Review: {text} Sentiment:").HasSecondText);
    }

    [TestMethod]
    [DataRow("Review: Sentiment:", "has no {text}")]
    [DataRow("{text} and {text}", "{text} more than once")]
    [DataRow("{text} {text2} {text2}", "{text2} more than once")]
    [DataRow("{text} It was {mask} {mask}.", "{mask} more than once")]
    [DataRow("{text} {label}", "unknown placeholder '{label}'")]
    [DataRow("{text} {mask", "unmatched '{'")]
    [DataRow("{text} }", "unmatched '}'")]
    public void MalformedTemplatesAreRefused(string template, string problem) =>
        AssertRefused<ArgumentException>(() => PromptTemplate.Parse(template), template, problem);

    [TestMethod]
    public void AnEncoderTemplateNeedsExactlyOneMask()
    {
        AssertRefused<ArgumentException>(() => Create("bert", ClassifierKind.Encoder, "{text} It was good.", null), "has no mask", "{mask}", "[MASK]");
        AssertRefused<ArgumentException>(() => Create("bert", ClassifierKind.Encoder, "{mask} {text} It was [MASK].", null), "2 masks");

        // The tokenizer's own mask string works as well as {mask}.
        using var written = Create("roberta", ClassifierKind.Encoder, "{text} It was <mask>.", null);
        using var placeholder = Create("roberta", ClassifierKind.Encoder, "{text} It was {mask}.", null);
        CollectionAssert.AreEqual(placeholder.EncodePrompt("Fine.", null).Ids, written.EncodePrompt("Fine.", null).Ids);
    }

    [TestMethod]
    public void ADecoderTemplateEndsWhereTheLabelWordGoes()
    {
        AssertRefused<ArgumentException>(() => Create("gpt2", ClassifierKind.Decoder, "Sentiment: {mask}. Review: {text}", null), "before its end");

        // A final {mask} and trailing spaces mean the same as ending the template there.
        using var plain = Create("gpt2", ClassifierKind.Decoder, "Review: {text} Sentiment:", null);
        using var masked = Create("gpt2", ClassifierKind.Decoder, "Review: {text} Sentiment: {mask}", null);
        using var spaced = Create("gpt2", ClassifierKind.Decoder, "Review: {text} Sentiment: ", null);
        CollectionAssert.AreEqual(plain.EncodePrompt("I loved it.", null).Ids, masked.EncodePrompt("I loved it.", null).Ids);
        CollectionAssert.AreEqual(plain.EncodePrompt("I loved it.", null).Ids, spaced.EncodePrompt("I loved it.", null).Ids);
    }

    [TestMethod]
    public void ByteLevelLabelWordsGetTheirLeadingSpace()
    {
        using var bare = Create("gpt2", ClassifierKind.Decoder, null, ["negative", "positive"]);
        using var spaced = Create("gpt2", ClassifierKind.Decoder, null, [" negative", " positive"]);
        CollectionAssert.AreEqual(new[] { " negative", " positive" }, bare.LabelWords.ToArray());
        CollectionAssert.AreEqual(new[] { 468, 469 }, bare.LabelWordTokenIds.Select(t => t.Single()).ToArray(), "Ġnegative and Ġpositive, one token each");
        CollectionAssert.AreEqual(spaced.LabelWordTokenIds.Select(t => t.Single()).ToArray(), bare.LabelWordTokenIds.Select(t => t.Single()).ToArray());

        using var wordPiece = Create("bert", ClassifierKind.Encoder, null, [" bad ", "good"]);
        CollectionAssert.AreEqual(new[] { "bad", "good" }, wordPiece.LabelWords.ToArray());
    }

    [TestMethod]
    public void UnusableLabelWordsAreRefused()
    {
        AssertRefused<ArgumentException>(() => Create("gpt2", ClassifierKind.Decoder, null, [" negative", "  "]), "\"  \"", "'positive'", "tokenizes to nothing");
        AssertRefused<ArgumentException>(() => Create("bert", ClassifierKind.Encoder, null, ["bad", "\u0007"]), "'positive'", "tokenizes to nothing");
        AssertRefused<ArgumentException>(() => Create("gpt2", ClassifierKind.Decoder, null, [" positive", "positive"]), "'negative' and 'positive'", "same label word", "Ġpositive");
        AssertRefused<ArgumentException>(() => Create("gpt2", ClassifierKind.Decoder, null, [" negative"]), "1 label words for 2 classes");
        AssertRefused<ArgumentException>(() => Create("bert", ClassifierKind.Encoder, null, ["bad", "cinematography"]), "\"cinematography\"", "tokens", "single tokens");
        AssertRefused<ArgumentException>(() => Create("bert", ClassifierKind.Encoder, null, ["bad", "☃"]), "not in the bert vocabulary", "[UNK]");
    }

    [TestMethod]
    public void ATemplateThatCannotFitTheMaximumLengthIsRefused() =>
        AssertRefused<ArgumentException>(() => Create("gpt2", ClassifierKind.Decoder, "Here is a review of a film, written by a viewer: {text} What is its sentiment?", null, maxLength: 8),
            "without any text", "maximum length of 8");

    [TestMethod]
    public void PairsNeedAPairTemplateAndTheOtherWayRound()
    {
        using var single = Create("gpt2", ClassifierKind.Decoder, null, null);
        AssertRefused<ArgumentException>(() => single.PredictProbabilities(["a"], ["b"]), "has no {text2}", "{text}\n{text2}\nAnswer:");
        using var pair = Create("gpt2", ClassifierKind.Decoder, PromptTemplate.DefaultFor(ClassifierKind.Decoder, pairs: true), null);
        AssertRefused<ArgumentException>(() => pair.PredictProbabilities(["a"], null), "has {text2}", "no second texts");
        Assert.AreEqual(2, pair.PredictProbabilities(["a"], ["b"])[0].Length);
    }

    [TestMethod]
    public void AnEncoderCheckpointWithoutItsMaskedLmHeadIsRefused()
    {
        // hf-tiny/bert is a BertForSequenceClassification checkpoint: a body and a classifier, no cls.predictions.*.
        var folder = TestPaths.Fixtures("hf-tiny", "bert");
        AssertRefused<InvalidDataException>(() => PromptClassifier.FromPretrained(folder, ["negative", "positive"], ClassifierKind.Encoder, null, 32, 1, out _),
            folder, "no masked-LM head", "cls.predictions.bias", "cls.predictions.transform.dense.weight");
    }

    [TestMethod]
    public void TheKindMustMatchTheModel()
    {
        AssertRefused<InvalidDataException>(() => Create("gpt2", ClassifierKind.Encoder, null, null), "Gpt2 decoder", "ClassifierKind.Decoder (DecoderClassifier with the prompt strategy");
        AssertRefused<InvalidDataException>(() => Create("bert", ClassifierKind.Decoder, null, null), "Bert encoder", "ClassifierKind.Encoder (EncoderClassifier with the prompt strategy");
    }

    [TestMethod]
    public void LabelWordsParseAsLabelEqualsWord()
    {
        CollectionAssert.AreEqual(new[] { " negative", " positive" }, Verbalizer.Parse("positive= positive,negative= negative", ["negative", "positive"]).ToArray());
        CollectionAssert.AreEqual(new[] { "bad", "good" }, Verbalizer.Parse(" 0 =bad , 1=good ,", ["0", "1"]).ToArray());
        AssertRefused<ArgumentException>(() => Verbalizer.Parse("positive good", ["negative", "positive"]), "without '='");
        AssertRefused<ArgumentException>(() => Verbalizer.Parse("neutral=meh", ["negative", "positive"]), "'neutral'", "'negative', 'positive'");
        AssertRefused<ArgumentException>(() => Verbalizer.Parse("positive=good,positive=great,negative=bad", ["negative", "positive"]), "'positive' a word twice");
        AssertRefused<ArgumentException>(() => Verbalizer.Parse("positive=good", ["negative", "positive"]), "no word for the class 'negative'");
    }

    [TestMethod]
    public void DefaultLabelWordsReadSentimentClasses()
    {
        CollectionAssert.AreEqual(new[] { "negative", "positive" }, Verbalizer.Defaults(["False", "True"], ClassifierKind.Decoder).ToArray());
        CollectionAssert.AreEqual(new[] { "great", "terrible" }, Verbalizer.Defaults(["positive", "negative"], ClassifierKind.Encoder).ToArray());
        CollectionAssert.AreEqual(new[] { "sports", "politics" }, Verbalizer.Defaults(["sports", "politics"], ClassifierKind.Decoder).ToArray());
    }

    [TestMethod]
    public void TextClassifierLoadPointsToPromptClassifierForAPromptFolder()
    {
        var folder = TestPaths.NewTempDirectory();
        try
        {
            using (var classifier = Create("gpt2", ClassifierKind.Decoder, null, null))
            {
                classifier.Save(folder);
            }

            AssertRefused<InvalidDataException>(() => HeadClassifier.Load(folder), "prompt classifier", "PromptClassifier.Load");
            using var head = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["a", "b"], ClassifierKind.Encoder, 32, 1, out _);
            head.Save(Path.Combine(folder, "head"));
            AssertRefused<InvalidDataException>(() => PromptClassifier.Load(Path.Combine(folder, "head")), "no prompt settings", "HeadClassifier.Load");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
