package generator

import "github.com/flyingcircusio/devhost/templates"

func loadOverride(dir string) (*templates.Set, error) { return templates.Load(dir) }
