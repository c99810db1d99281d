using System.CommandLine;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary><c>--precision fp32|bf16</c>: the number format a command scores in (training always runs in fp32).</summary>
internal static class PrecisionOption
{
    public const string Float32 = "fp32";

    public const string BFloat16 = "bf16";

    public static Option<string?> Create(string description)
    {
        var option = new Option<string?>("--precision") { Description = description };
        option.AcceptOnlyFromAmong(Float32, BFloat16);
        return option;
    }

    public static InferencePrecision? Parse(string? value) => value switch
    {
        null => null,
        Float32 => InferencePrecision.Float32,
        BFloat16 => InferencePrecision.BFloat16,
        _ => throw new CliException($"--precision must be {Float32} or {BFloat16} (got '{value}')."),
    };

    public static string Name(InferencePrecision precision) => precision == InferencePrecision.BFloat16 ? BFloat16 : Float32;
}
