namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>A small separable sentiment-like dataset: the label depends only on which word list the sentence uses.</summary>
internal static class SyntheticReviews
{
    private static readonly string[] Positive = ["good", "great", "wonderful", "excellent", "fun", "lovely"];
    private static readonly string[] Negative = ["bad", "terrible", "awful", "boring", "poor", "dull"];
    private static readonly string[] Neutral = ["long", "french", "old", "new", "quiet", "short"];
    private static readonly string[] Templates =
    [
        "the movie was {0} .",
        "i think this film is {0} and i told my friends",
        "a {0} story with a {0} ending",
        "{0} acting , {0} music",
        "what a {0} evening at the cinema",
        "honestly the plot felt {0} to me",
    ];

    /// <summary>Binary rows: label 1 for positive words, 0 for negative ones.</summary>
    public static (List<string> Texts, List<int> Labels) Binary(int count, int seed)
    {
        var random = new Random(seed);
        var texts = new List<string>(count);
        var labels = new List<int>(count);
        for (var i = 0; i < count; i++)
        {
            var label = i % 2;
            var words = label == 1 ? Positive : Negative;
            texts.Add(string.Format(System.Globalization.CultureInfo.InvariantCulture, Templates[random.Next(Templates.Length)], words[random.Next(words.Length)]));
            labels.Add(label);
        }

        return (texts, labels);
    }

    /// <summary>Three classes: negative (0), neutral (1), positive (2).</summary>
    public static (List<string> Texts, List<int> Labels) ThreeClasses(int count, int seed)
    {
        var random = new Random(seed);
        var texts = new List<string>(count);
        var labels = new List<int>(count);
        string[][] lists = [Negative, Neutral, Positive];
        for (var i = 0; i < count; i++)
        {
            var label = i % 3;
            texts.Add(string.Format(System.Globalization.CultureInfo.InvariantCulture, Templates[random.Next(Templates.Length)], lists[label][random.Next(lists[label].Length)]));
            labels.Add(label);
        }

        return (texts, labels);
    }
}
