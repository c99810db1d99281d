using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Training.Chat;

/// <summary>Reading a chat model's reply: tolerant label parsing, scores from log-probabilities, retry delays.</summary>
[TestClass]
public sealed class ChatAnswerTests
{
    private static readonly string[] Labels = ["negative", "neutral", "positive"];

    [TestMethod]
    [DataRow("{\"label\":\"positive\"}", 2)]
    [DataRow("{ \"label\" : \"Negative\" }", 0)]
    [DataRow("positive", 2)]
    [DataRow("  Positive.\n", 2)]
    [DataRow("\"neutral\"", 1)]
    [DataRow("'NEUTRAL'", 1)]
    [DataRow("`negative`.", 0)]
    [DataRow("mixed", -1)]
    [DataRow("{\"label\":\"mixed\"}", -1)]
    [DataRow("The answer is positive", -1)]
    [DataRow("", -1)]
    public void ParsesLabelsTolerantlyAndNothingElse(string reply, int expected) =>
        Assert.AreEqual(expected, ChatAnswer.Parse(reply, Labels).Class);

    [TestMethod]
    public void ScoreComesFromTheLabelTokensLogProbabilities()
    {
        const string Text = "{\"label\":\"positive\"}";
        var (chosen, offset) = ChatAnswer.Parse(Text, Labels);
        Assert.AreEqual(10, offset);
        ChatToken Plain(string t) => new(t, 0, [KeyValuePair.Create(t, 0.0)]);
        var reply = new ChatReply(Text,
            [Plain("{\""), Plain("label"), Plain("\":\""),
             new ChatToken("pos", Math.Log(0.6), [KeyValuePair.Create("pos", Math.Log(0.6)), KeyValuePair.Create("neg", Math.Log(0.2)), KeyValuePair.Create("ne", Math.Log(0.1)), KeyValuePair.Create("xyz", Math.Log(0.05))]),
             Plain("itive"), Plain("\"}")],
            10, 5);

        var probabilities = ChatAnswer.Probabilities(reply, chosen, offset, Labels);

        // "ne" begins two labels and "xyz" none: only "pos" and "neg" count, normalised over the labels.
        Assert.AreEqual(0.25f, probabilities[0], 1e-6f);
        Assert.AreEqual(0f, probabilities[1]);
        Assert.AreEqual(0.75f, probabilities[2], 1e-6f);
    }

    [TestMethod]
    public void ScoreIsOneHotWithoutLogProbabilitiesOrWhenTheyDisagreeWithTheAnswer()
    {
        var plain = new ChatReply("positive", null, 1, 1);
        CollectionAssert.AreEqual(new[] { 0f, 0f, 1f }, ChatAnswer.Probabilities(plain, 2, 0, Labels));

        // Sampled away from the most likely token: the answer wins, so PredictedLabel agrees with the reply.
        var sampled = new ChatReply("positive", [new ChatToken("positive", Math.Log(0.3), [KeyValuePair.Create("negative", Math.Log(0.7)), KeyValuePair.Create("positive", Math.Log(0.3))])], 1, 1);
        CollectionAssert.AreEqual(new[] { 0f, 0f, 1f }, ChatAnswer.Probabilities(sampled, 2, 0, Labels));
    }

    [TestMethod]
    public void RetryAfterIsReadInMillisecondsSecondsOrAsADate()
    {
        var now = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
        Assert.AreEqual(TimeSpan.FromMilliseconds(250), ChatRequestSender.ParseRetryAfter("250", "9", now));
        Assert.AreEqual(TimeSpan.FromSeconds(7), ChatRequestSender.ParseRetryAfter(null, "7", now));
        Assert.AreEqual(TimeSpan.FromSeconds(30), ChatRequestSender.ParseRetryAfter(null, "Thu, 01 Jan 2026 12:00:30 GMT", now));
        Assert.IsNull(ChatRequestSender.ParseRetryAfter(null, null, now));
    }

    [TestMethod]
    public void BackOffDoublesAndIsCappedAndRetryAfterWins()
    {
        var sender = new ChatRequestSender(new ChatClassifierSettings { ModelId = "m", RetryBaseDelay = TimeSpan.FromSeconds(1), MaximumRetryDelay = TimeSpan.FromSeconds(5) }, null!);
        Assert.AreEqual(TimeSpan.FromSeconds(1), sender.RetryDelay(0, null));
        Assert.AreEqual(TimeSpan.FromSeconds(4), sender.RetryDelay(2, null));
        Assert.AreEqual(TimeSpan.FromSeconds(5), sender.RetryDelay(10, null));
        Assert.AreEqual(TimeSpan.FromSeconds(3), sender.RetryDelay(0, TimeSpan.FromSeconds(3)));
        Assert.AreEqual(TimeSpan.FromSeconds(5), sender.RetryDelay(0, TimeSpan.FromSeconds(300)));
    }
}
