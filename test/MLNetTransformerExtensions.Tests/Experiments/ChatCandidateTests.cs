using Microsoft.ML;
using MLNetTransformerExtensions.Experiments;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.MLNet;
using MLNetTransformerExtensions.Tests.Training.Chat;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Experiments;

/// <summary>A chat model joins an experiment when given a client, and is ranked with the classic pipelines.</summary>
[TestClass]
public sealed class ChatCandidateTests
{
    private static readonly (string Topic, string[] Words)[] s_topics =
    [
        ("sports", ["goal", "match", "team", "coach", "league", "striker", "season"]),
        ("cooking", ["oven", "recipe", "salt", "bake", "flour", "taste", "sauce"]),
        ("tech", ["code", "server", "chip", "software", "network", "cloud", "laptop"]),
    ];

    private static FakeReply Topic(string text) =>
        FakeReply.Label(s_topics.First(t => t.Words.Any(w => text.Contains(w, StringComparison.Ordinal))).Topic);

    [TestMethod]
    public void AChatCandidateRunsBesideTheClassicOnesAndIsRanked()
    {
        using var server = new FakeChatServer((text, _) => Topic(text));
        using var client = ChatClients.CreateOpenAICompatible("gpt-test", server.BaseUrl, "sk-test");
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextClassificationTestData.TopicRows(60, seed: 3).Select(r => new TopicInput { Text = r.Text, Label = r.Label }));
        var validation = ml.Data.LoadFromEnumerable(TextClassificationTestData.TopicRows(30, seed: 4).Select(r => new TopicInput { Text = r.Text, Label = r.Label }));

        var result = ml.CreateTextClassificationExperiment(new TextClassificationExperimentSettings
        {
            Candidates = [new SdcaMaximumEntropyCandidate(), .. ExperimentCandidates.Chat(client, new ChatClassifierOptions { ModelId = "gpt-test", ShotsPerClass = 1 })],
            MaxTrials = 2,
        }).Execute(train, validation);

        var chat = result.Trials.Single(t => t.Candidate == "Chat:gpt-test");
        Assert.AreEqual(TrialStatus.Completed, chat.Status, chat.Error);
        Assert.AreEqual(1.0, chat.Metric);
        Assert.AreEqual(1.0, chat.Hyperparameters["shots_per_class"]);
        Assert.IsGreaterThanOrEqualTo(30, server.Requests, "the validation rows were asked");
    }

    [TestMethod]
    public void AChatCandidateNeedsAModelId()
    {
        using var client = ChatClients.CreateOpenAICompatible("gpt-test", new Uri("http://127.0.0.1:9/v1/"), "sk-test");
        Assert.ThrowsExactly<ArgumentException>(() => new ChatCandidate(client, new ChatClassifierOptions()));
    }
}
